import ArgumentParser
import BLCore
import BLGraph
import BLVNet
import BLCheckpoint
import BLEngine
import BLKernels
#if canImport(Glibc)
import Glibc
#endif

/// `MODEL [--frames T]`: a model package, or a checkpoint imported in memory.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A model package (written by `blconvert import`) or a checkpoint, imported in memory.")
    var model: String

    @Option(name: .long, help: "Frames per clip T, when a checkpoint's name or arch does not tell it (f8x2 means 16).")
    var frames: Int?

    func validate() throws {
        if let f = frames, f < 2 || f % 2 != 0 {
            throw ValidationError("--frames must be an even number >= 2 (got \(f))")
        }
    }
}

/// `--input HxW`: the clip size that counts and benchmarks are made for.
struct InputSizeOptions: ParsableArguments {
    @Option(name: .long, help: "Input height x width (e.g. 224x224 or 224).")
    var input: InputSize = InputSize(height: 224, width: 224)
}

/// `--threads K`.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for the kernels and BLAS (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 || t > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }

    var context: KernelContext {
        var c = KernelContext()
        if let t = threads { c.threads = t }
        return c
    }
}

/// A model ready to run: its graph, float weights and configuration.
struct LoadedModel {
    var graph: Graph
    var weights: [String: Tensor]
    var config: BLVNetConfig
    var dtype: DType
    /// "package" or the checkpoint format.
    var origin: String
}

enum ModelLoader {
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Imports a checkpoint (not optimized: the caller decides). T, which decides the computation,
    /// comes from `frames`, else the checkpoint's `arch`, else the file's own name (never from the
    /// folders above it); the informational beta may also come from the folder name.
    static func importCheckpoint(_ path: String, frames: Int?) throws -> (ImportedModel, Checkpoint) {
        let ck = try Checkpoint.open(path: path)
        let arch = ck.entry("arch")?.stringValue
        let t = frames ?? arch.flatMap { BLVNetNameHints($0).frames } ?? BLVNetNameHints(path.lastPathComponent).frames
        do {
            // The model weights: a training checkpoint's `state_dict` (or `model_state_dict`, ...) subtree.
            let model = try BLVNetImporter.importModel(tensors: ck.stateDict().tensors,
                                                       frames: t, sourceName: t == nil ? path.lastPathComponent : path,
                                                       arch: arch)
            return (model, ck)
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }

    static func load(_ options: ModelOptions) throws -> LoadedModel {
        let path = options.model
        if isDirectory(path) {
            if access(path + "/graph.json", F_OK) != 0 {
                throw BLError(.invalidArgument, "a directory but not a model package (no graph.json): give a package written by `blconvert import` or a checkpoint file", file: path)
            }
            let p = try ModelPackage.read(path)
            if let f = options.frames, f != p.config.frames {
                throw BLError(.invalidArgument, "--frames \(f) does not match the package's T = \(p.config.frames) (the frame count is fixed at import)", file: path)
            }
            return LoadedModel(graph: p.graph, weights: p.weights, config: p.config, dtype: p.dtype, origin: "package")
        }
        let (model, ck) = try importCheckpoint(path, frames: options.frames)
        let p = try ModelPackage(importing: model, optimize: true, dtype: .float32, source: nil,
                                 toolVersion: BLConvertVersion.string)
        return LoadedModel(graph: p.graph, weights: p.weights, config: p.config, dtype: .float32, origin: ck.format.rawValue)
    }
}

/// `HxW` sizes.
struct InputSize: ExpressibleByArgument {
    var height: Int
    var width: Int

    init(height: Int, width: Int) { self.height = height; self.width = width }

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x")
        if parts.count == 1, let s = Int(parts[0]), s > 0 { height = s; width = s; return }
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0, h <= 16384, w <= 16384 else { return nil }
        height = h
        width = w
    }

    var defaultValueDescription: String { "\(height)x\(width)" }
}

/// Wall-clock seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Peak resident set size of this process, in bytes.
func peakRSS() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Int(u.ru_maxrss) * 1024
}
