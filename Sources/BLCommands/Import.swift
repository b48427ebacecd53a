import ArgumentParser
import BLConvert
import BLCore
import Foundation
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a bLVNet-TAM checkpoint into a model package (graph IR + weights + metadata).",
        discussion: """
        Accepts PyTorch legacy and zip files (plain state dicts or training
        checkpoints with a state_dict), HDF5 exports (flat or nested) and safetensors
        files. The configuration (blocks per stage, alpha, beta, blending frames,
        input channels, head, classes) is inferred from the tensor names and shapes.
        The frame count T is not in the weights: it comes from --frames, else from a
        training checkpoint's arch, else from the file name (...-f8x2... means
        T = 16).

        Loading is strict, like load_state_dict(strict=True): every tensor the model
        needs must be present with its shape and every tensor of the checkpoint must
        be used; otherwise one error lists the missing, unexpected and mis-shaped
        names.

        BatchNorm is folded into the convolutions and ReLU fused (--no-optimize keeps
        the reference graph, where every reference module's output can be verified).
        --dtype f16/bf16 halves the package: convolution and linear weights are
        rounded to that type (biases and other vectors stay float32), so expect
        logits errors of the order of 1e-3 (f16) and 1e-2 (bf16) relative instead
        of 1e-6 (verify --rtol accordingly). The package is a directory written
        atomically: a failed import leaves nothing behind.

        Examples:
          blconvert import st2stv2-bLVNet-TAM-50-a2-b4-f8x2.pth.tar -o r50.blc
          blconvert import model.pth.tar -o mini.blc --frames 8 --dtype f16
        """
    )

    @Argument(help: "The checkpoint to convert.")
    var checkpoint: String

    @Option(name: .shortAndLong, help: "Output model package directory.")
    var output: String

    @Option(name: .long, help: "Frames per clip T (even). Needed when neither arch nor the file name tells it.")
    var frames: Int?

    @Option(name: .long, help: "Weight storage: f32, f16 or bf16.")
    var dtype: String = "f32"

    @Flag(name: .long, help: "Keep BatchNorm and ReLU as separate nodes (the reference graph).")
    var noOptimize = false

    @Flag(name: .long, help: "Replace an existing package at the output path.")
    var force = false

    @Flag(name: .long, help: ArgumentHelp("Do not write the kernel cache (kernels.safetensors).",
                                          discussion: "By default a float32 package also holds its convolution weights packed (and transformed for Winograd) for this CPU's kernels, about as large again as the weights, so that loading maps them instead of packing: a one-clip run starts faster. A CPU with another kernel layout ignores the cache; deleting it is safe."))
    var noKernelCache = false

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        guard DType(userName: dtype).flatMap(WeightPrecision.init(dtype:)) != nil else {
            throw ValidationError("--dtype must be f32, f16 or bf16 (got '\(dtype)')")
        }
        if let f = frames, f < 2 || f % 2 != 0 {
            throw ValidationError("--frames must be an even number >= 2 (got \(f))")
        }
        if output == checkpoint { throw ValidationError("the output must not be the checkpoint itself") }
    }

    private func cacheLine(_ s: Converter.ImportSummary) -> String {
        guard s.kernelCache.layers > 0 else { return "" }
        return "\n  kernel cache: \(s.kernelCache.layers) layers prepacked for this CPU, \(Format.fixed(Double(s.kernelCache.bytes) / 1048576, 1)) MiB"
    }

    var precision: WeightPrecision {
        DType(userName: dtype).flatMap(WeightPrecision.init(dtype:)) ?? .float32
    }

    func run() throws {
        let summary = try reportingErrors { () -> Converter.ImportSummary in
            let s = try Converter.importCheckpoint(URL(fileURLWithPath: checkpoint), to: URL(fileURLWithPath: output),
                                                   precision: precision, frames: frames, optimize: !noOptimize,
                                                   overwrite: force, kernelCache: !noKernelCache) { stage in
                switch stage {
                case .reading: Console.progress("reading \(checkpoint)")
                case .building: Console.progress("building package")
                case .writing: Console.progress("writing \(output)")
                }
            }
            Console.progress("")
            for w in s.warnings { Console.err("warning: \(w)") }
            return s
        }
        let c = summary.configuration
        if json.json {
            Console.out(JSON.object([
                ("output", .string(output)),
                ("source", .string(checkpoint)),
                ("source_format", .string(summary.sourceFormat)),
                ("source_sha256", .string(summary.sourceSHA256)),
                ("checkpoint_tensors", .int(Int64(summary.checkpointTensors))),
                ("config", c.internalConfig.json),
                ("nodes", .int(Int64(summary.nodes))),
                ("weights", .int(Int64(summary.weights))),
                ("dtype", .string(summary.precision.dtype.torchName)),
                ("optimized", .bool(summary.optimized)),
                ("kernel_cache", .object([("layers", .int(Int64(summary.kernelCache.layers))),
                                          ("bytes", .int(Int64(summary.kernelCache.bytes)))])),
                ("seconds", .double(summary.seconds)),
                ("stage_seconds", .object(summary.stageSeconds.map { ($0.stage, .double($0.seconds)) })),
            ]).strictJSONText)
        } else {
            Console.out("""
            imported \(checkpoint) (\(summary.sourceFormat), \(summary.checkpointTensors) tensors)
              model: \(c)
              graph: \(summary.nodes) nodes, \(summary.weights) weights (\(summary.precision.dtype.torchName))\(summary.optimized ? ", BatchNorm folded, ReLU fused" : "")\(cacheLine(summary))
              wrote \(output) in \(Format.fixed(summary.seconds, 2)) s
            """)
        }
    }
}
