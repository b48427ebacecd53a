import ArgumentParser
import BLConvert

/// `--json`: machine-readable output on stdout.
struct JSONOutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON on stdout instead of the text report.")
    var json = false
}

/// `--threads K`.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for the kernels and BLAS (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 || t > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }

    /// The threads the kernels run: the option, else every core.
    var count: Int { threads ?? RuntimeOptions.defaultThreads }
}

/// `--input HxW`: the clip size that counts and benchmarks are made for.
struct InputSizeOptions: ParsableArguments {
    @Option(name: .long, help: "Input height x width (e.g. 224x224 or 224).")
    var input: InputSize = InputSize(height: 224, width: 224)

    /// Prints the warning for a half-given size (call from `run`).
    func warn() { if let note = input.note { Console.err("warning: \(note)") } }
}

/// `HxW` sizes.
struct InputSize: ExpressibleByArgument {
    var height: Int
    var width: Int

    init(height: Int, width: Int) { self.height = height; self.width = width }

    /// What was assumed about a half-given size (`64x` is read as 64x64), for a warning.
    var note: String?

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        if parts.count == 1, let s = Int(parts[0]), s > 0, s <= 16384 { height = s; width = s; return }
        if parts.count == 2, parts[0].isEmpty != parts[1].isEmpty, let s = Int(parts[0].isEmpty ? parts[1] : parts[0]),
           s > 0, s <= 16384 {
            height = s
            width = s
            note = "--input \(argument) gives one side only; using \(s)x\(s)"
            return
        }
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0, h <= 16384, w <= 16384 else { return nil }
        height = h
        width = w
    }

    var defaultValueDescription: String { "\(height)x\(width)" }
}
