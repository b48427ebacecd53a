import ArgumentParser
import BLCore
import BLVNet
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        guard let d = DType(userName: dtype), ModelPackage.storableDTypes.contains(d) else {
            throw ValidationError("--dtype must be f32, f16 or bf16 (got '\(dtype)')")
        }
        if let f = frames, f < 2 || f % 2 != 0 {
            throw ValidationError("--frames must be an even number >= 2 (got \(f))")
        }
        if output == checkpoint { throw ValidationError("the output must not be the checkpoint itself") }
    }

    func run() throws {
        let start = now()
        let storeAs = DType(userName: dtype) ?? .float32
        var stages: [(String, Double)] = []
        func stage(_ name: String, _ t0: Double) { stages.append((name, now() - t0)) }
        let (pkg, tensorCount, format) = try reportingErrors { () -> (ModelPackage, Int, String) in
            // --force replaces a model package, never some other directory or file.
            try checkReplaceable(output, force: force) {
                ModelLoader.isDirectory(output) && access(output + "/" + ModelPackage.metadataFile, F_OK) == 0
                    && access(output + "/" + ModelPackage.graphFile, F_OK) == 0
                    ? nil : "exists and is not a model package; --force only replaces a package written by blconvert import"
            }
            var t = now()
            Console.progress("reading \(checkpoint)")
            let (model, ck) = try ModelLoader.importCheckpoint(checkpoint, frames: frames)
            stage("read_and_map", t); t = now()
            let source = ModelPackage.PendingSource(file: checkpoint)  // hashed on its own thread meanwhile
            Console.progress("building package")
            var pkg = try ModelPackage(importing: model, optimize: !noOptimize, dtype: storeAs, source: nil,
                                       toolVersion: BLConvertVersion.string)
            stage("passes", t); t = now()
            Console.progress("writing \(output)")
            try pkg.write(to: output, overwrite: force, source: source)
            stage("write", t)
            stages.append(("sha256", source.seconds))  // concurrent with passes and write
            Console.progress("")
            return (pkg, ck.tensors.count, ck.format.rawValue)
        }
        let seconds = now() - start
        let c = pkg.config
        if json.json {
            Console.out(JSON.object([
                ("output", .string(output)),
                ("source", .string(checkpoint)),
                ("source_format", .string(format)),
                ("source_sha256", .string(pkg.source?.sha256 ?? "")),
                ("checkpoint_tensors", .int(Int64(tensorCount))),
                ("config", c.json),
                ("nodes", .int(Int64(pkg.graph.nodes.count))),
                ("weights", .int(Int64(pkg.graph.weights.count))),
                ("dtype", .string(storeAs.torchName)),
                ("optimized", .bool(!noOptimize)),
                ("seconds", .double(seconds)),
                ("stage_seconds", .object(stages.map { ($0.0, .double($0.1)) })),
            ]).strictJSONText)
        } else {
            Console.out("""
            imported \(checkpoint) (\(format), \(tensorCount) tensors)
              model: \(BLVNetImporter.describe(c).unparenthesized)
              graph: \(pkg.graph.nodes.count) nodes, \(pkg.graph.weights.count) weights (\(storeAs.torchName))\(noOptimize ? "" : ", BatchNorm folded, ReLU fused")
              wrote \(output) in \(Format.fixed(seconds, 2)) s
            """)
        }
    }
}
