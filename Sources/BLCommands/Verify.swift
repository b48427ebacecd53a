import ArgumentParser
import BLConvert
import BLCore
import BLVerify
import Foundation
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run reference clips through the Swift model and prove numerical parity with PyTorch.",
        discussion: """
        Each CLIP is a safetensors file (a folder stands for the .safetensors files
        in it) holding `input` [N, T*C, H, W] and the reference output
        `logits_f64` (else `logits`), optionally `act.<module>` intermediate
        outputs (written by tools/export_reference.py). Per clip and
        sample it reports the max abs error, the max relative error
        max|swift - ref| / max|ref|, the cosine similarity and whether the top-1 and
        top-5 classes agree. A clip passes when max|swift - ref| <= atol + rtol *
        max|ref| (for the logits and every intermediate compared). When an
        intermediate diverges, the first diverging reference module is named.
        Modules an optimized package folded away are listed as not compared; a
        package imported with --no-optimize compares them all.

        A clip that cannot be checked (unreadable, or an input this model does not
        take) is reported and the remaining clips are still run.

        Exit status: 0 every clip passes, 1 some clip fails, 2 bad input (the model
        cannot be loaded, or some clip cannot be checked).

        Examples:
          blconvert verify r50.blc clip0.safetensors clip1.safetensors
          blconvert verify model.pth.tar --frames 8 clips/*.safetensors --json
          blconvert verify r50.blc clips/ --junit parity.xml
        """
    )

    @OptionGroup var model: ModelOptions

    @Argument(help: "Reference clip files (.safetensors), or folders: every .safetensors file in them, by name.")
    var clips: [String] = []

    @Option(name: .long, help: "Relative tolerance, against max|reference| of each compared tensor.")
    var rtol: Double = 1e-5

    @Option(name: .long, help: "Absolute tolerance added to rtol * max|reference|.")
    var atol: Double = 0

    @Flag(name: .long, help: "Also fail a clip whose top-5 classes differ in order from the reference.")
    var requireTop5 = false

    @Flag(name: .long, help: "Do not compare act.* intermediate outputs.")
    var noActivations = false

    @Option(name: .long, help: "Write a JUnit XML report to this file.")
    var junit: String?

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var weightMemory: WeightMemoryOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if clips.isEmpty { throw ValidationError("give at least one reference clip file") }
        if !(rtol >= 0) || !(atol >= 0) { throw ValidationError("--rtol and --atol must be >= 0") }
    }

    func run() throws {
        let tolerance = Tolerance(relative: rtol, absolute: atol, requireTop5: requireTop5, compareIntermediates: !noActivations)
        let options = tolerance.options
        var results: [ClipResult] = []
        var errors: [ClipError] = []
        try reportingErrors {
            let expanded = try Self.expand(clips)
            if let junit { try checkNotAnInput(junit, option: "--junit", inputs: clips + expanded + [model.model]) }
            let clips = expanded
            let loaded = try model.load(threads: threads, weights: weightMemory, compute: compute)
            let report = try Verifier.verify(model: loaded, clips: clips.map { URL(fileURLWithPath: $0) }, tolerance: tolerance) { event in
                switch event {
                case let .started(i, count, file):
                    Console.progress("clip \(i + 1) of \(count): \(file.path.lastPathComponent)")
                case let .finished(i, count, file, passed?, seconds):
                    Console.progress("clip \(i + 1) of \(count): \(file.path.lastPathComponent) \(passed ? "ok" : "FAIL") in \(Format.fixed(seconds, 2)) s")
                case .finished(_, _, _, nil, _):
                    Console.progress("")
                }
            }
            results = report.clips.map(\.result)
            errors = report.errors
            for e in errors { Console.err("error: \(e.error)") }
            Console.progress("")
            if let junit {
                try AtomicFile.write(VerifyReport.junit(results, errors: errors, model: model.model, options: options), to: junit)
            }
        }
        if json.json {
            Console.out(VerifyReport.json(results, errors: errors, model: model.model, options: options).strictJSONText)
        } else {
            Console.out(Self.table(results, errors: errors, options: options))
        }
        if !errors.isEmpty { throw Exit.badInput }
        if !results.allSatisfy({ $0.passed }) { throw Exit.failed }
    }

    /// The clip files: folders replaced by the `.safetensors` files they hold, sorted by name.
    static func expand(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for p in paths {
            guard FileKind.of(p) == .directory else { out.append(p); continue }
            guard let dir = opendir(p) else {
                throw BLError(.io, "cannot list the folder: \(String(cString: strerror(errno)))", file: p)
            }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasSuffix(".safetensors") && !name.hasPrefix(".") { names.append(name) }
            }
            closedir(dir)
            guard !names.isEmpty else {
                throw BLError(.invalidArgument, "the folder holds no .safetensors clip files", file: p)
            }
            let base = p.hasSuffix("/") ? p : p + "/"
            out += names.sorted().map { base + $0 }
        }
        return out
    }

    static func table(_ results: [ClipResult], errors: [ClipError] = [], options: VerifyOptions) -> String {
        let width = max(28, (results.map { $0.file.lastPathComponent.count }.max() ?? 0) + 2)
        var s = Format.pad("clip", width) + Format.pad("sample", 8) + Format.pad("max abs", 10) + Format.pad("max rel", 10)
        s += Format.pad("cosine", 12) + Format.pad("top1", 6) + Format.pad("top5", 6) + "result\n"
        for r in results {
            let name = r.file.lastPathComponent
            for smp in r.samples {
                s += Format.pad(smp.index == 0 ? name : "", width) + Format.pad(String(smp.index), 8)
                s += Format.pad(Format.sci(smp.agreement.maxAbsError), 10) + Format.pad(Format.sci(smp.agreement.maxRelError), 10)
                s += Format.pad(Format.fixed(smp.agreement.cosine, 8), 12)
                s += Format.pad(smp.top1 ? "yes" : "NO", 6) + Format.pad(smp.top5 ? "yes" : "NO", 6)
                s += (smp.index == r.samples.count - 1 ? (r.passed ? "pass" : "FAIL") : "") + "\n"
            }
            let compared = r.activations.filter { $0.agreement != nil }
            if !compared.isEmpty {
                let worst = compared.max { ($0.agreement?.maxRelError ?? 0) < ($1.agreement?.maxRelError ?? 0) }
                s += "  \(compared.count) intermediate outputs compared"
                if let w = worst, let a = w.agreement { s += ", worst \(w.module) (rel \(Format.sci(a.maxRelError)))" }
                s += "\n"
            }
            for a in r.activations where a.note != nil { s += "  \(a.module): \(a.note ?? "")\n" }
            if let d = r.firstDivergence {
                s += "  first divergence: \(d.module)" + (d.agreement.map { " (rel \(Format.sci($0.maxRelError)))" } ?? "") + "\n"
            }
        }
        for e in errors {
            s += Format.pad(e.file.lastPathComponent, width) + "not checked: \(e.error.message)"
            s += (e.error.location.map { " (\($0))" } ?? "") + "\n"
        }
        let passed = results.filter { $0.passed }.count
        s += "\n\(passed) of \(results.count + errors.count) clips pass (rtol \(Format.sci(options.rtol)), atol \(Format.sci(options.atol)))"
        if !errors.isEmpty { s += "; \(errors.count) could not be checked" }
        return s
    }
}
