import ArgumentParser
import BLConvert
import BLCore
import Foundation

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a package's kernel cache for this CPU (its weights packed for the kernels).",
        discussion: """
        `import` writes a float32 package's kernel cache (kernels.safetensors) for the
        CPU it runs on: every convolution's weights packed, or transformed for
        Winograd, as loading would prepare them, so that loading maps them instead. A
        CPU with another kernel layout (a 48 KiB L1 data cache gives another depth
        slice than 32 KiB) ignores that cache, warns, and packs at every load; this
        command replaces the cache with one for this CPU. The file is written
        atomically beside the weights; nothing else in the package changes.

        Examples:
          blconvert prepare r50.blc
          blconvert prepare r50.blc --json
        """
    )

    @Argument(help: "A float32 model package (written by `blconvert import`).")
    var model: String

    @OptionGroup var json: JSONOutputOptions

    func run() throws {
        let t0 = MonotonicClock.seconds()
        let written = try reportingErrors { () -> (layers: Int, bytes: Int) in
            Console.progress("preparing the weights of \(model)")
            defer { Console.progress("") }
            return try Converter.writeKernelCache(package: URL(fileURLWithPath: model))
        }
        let seconds = MonotonicClock.seconds() - t0
        if json.json {
            Console.out(JSON.object([
                ("model", .string(model)), ("layers", .int(Int64(written.layers))),
                ("bytes", .int(Int64(written.bytes))), ("seconds", .double(seconds)),
            ]).strictJSONText)
        } else {
            Console.out("wrote the kernel cache of \(model): \(written.layers) layers, \(Format.bytes(written.bytes)), in \(Format.fixed(seconds, 2)) s")
        }
    }
}
