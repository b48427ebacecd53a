import BLCore
import BLEngine
import BLKernels
import BLSafetensors
import BLVNet
import Foundation

/// The optional `kernels.safetensors` of a model package: every float32 convolution's weights in
/// the form the CPU kernels run them (the GEMM's packed panels, or Winograd's transformed and
/// packed matrices), with the kernel choice made for each layer and the probe errors it was made
/// on. Loading a package with a matching cache maps these instead of packing the weights (and
/// probing Winograd) again: no fresh memory to fill and nothing to compute, which is most of
/// what loading a model costs.
///
/// One safetensors file: one float32 tensor per layer, named after its weight, and in
/// `__metadata__`:
/// - `format` `blconvert-kernels`, `version` `1`;
/// - `layout` (the kernels' panel shape) and `kc` (their depth slice, chosen from the L1 size of
///   the CPU that wrote it), which must equal this CPU's for the cache to be used;
/// - `weights_bytes`, the size of the `weights.safetensors` it was made from;
/// - `layers`: JSON `{"<weight>": {"path": "gemm" | "winograd", "tile": m, "errors": {"m": e}}}`.
///
/// The cache is derived data. A layer's entry is used only when it is exactly what binding would
/// compute: the same choice under the run's Winograd policy, the same size, and values at spread
/// positions equal to packing (or transforming) the weights there; any other entry, and a cache
/// that is missing, unreadable or made elsewhere, is ignored and those weights are packed as
/// without one. Deleting the file is always safe.
package enum KernelCache {
    package static let fileName = "kernels.safetensors"
    static let format = "blconvert-kernels"
    static let version = "1"

    /// What reading a package's cache gave.
    package struct Loaded: Sendable {
        /// Entries by weight name (empty when the cache is absent or does not apply).
        package var entries: [String: CachedConvWeights]
        /// Why the cache is not used, when it exists but does not apply (nil otherwise).
        package var ignored: String?
    }

    /// `name` inside the package directory `dir`.
    private static func path(_ name: String, in dir: String) -> String { (dir.hasSuffix("/") ? dir : dir + "/") + name }

    /// The size of the package's weights file, which a cache records and must match.
    private static func weightsBytes(in dir: String) -> Int? {
        var st = stat()
        return stat(path(ModelPackage.weightsFile, in: dir), &st) == 0 ? Int(st.st_size) : nil
    }

    /// The cache of the package directory `dir`, mapped with its pages read in (`populate`) for
    /// a load that is about to use them.
    package static func read(packageDirectory dir: String, populate: Bool = true) -> Loaded {
        let path = path(fileName, in: dir)
        guard FileKind.of(path) == .regular else { return Loaded(entries: [:], ignored: nil) }
        guard let weightsBytes = weightsBytes(in: dir) else {
            return Loaded(entries: [:], ignored: "no weights file beside it")
        }
        do {
            let file = try SafetensorsFile.load(path: path)
            let loaded = try parse(file, weightsBytes: weightsBytes)
            // Read in only a cache that applies (a foreign one costs its header only).
            if populate && !loaded.entries.isEmpty { file.file.populate() }
            return loaded
        } catch {
            return Loaded(entries: [:], ignored: "unreadable (\(error)); the weights are packed at load")
        }
    }

    /// What `inspect` shows of a package's cache: nil when it has none; else its layers and bytes
    /// usable on this CPU, and why it is not used when it does not apply.
    package static func describe(packageDirectory dir: String) -> (layers: Int, bytes: Int, ignored: String?)? {
        guard FileKind.of(path(fileName, in: dir)) == .regular else { return nil }
        let loaded = read(packageDirectory: dir, populate: false)
        return (loaded.entries.count, loaded.entries.values.reduce(0) { $0 + $1.count * 4 }, loaded.ignored)
    }

    private static func parse(_ file: SafetensorsFile, weightsBytes: Int) throws -> Loaded {
        var meta: [String: String] = [:]
        for (k, v) in file.metadata { meta[k] = v }
        guard meta["format"] == format, meta["version"] == version else {
            return Loaded(entries: [:], ignored: "not a version-\(version) kernel cache")
        }
        guard let here = CachedConvWeights.layout else {
            return Loaded(entries: [:], ignored: "this CPU does not run the packed kernels")
        }
        guard meta["layout"] == here.name, meta["kc"] == String(here.kc) else {
            return Loaded(entries: [:], ignored: "written for kernels \(meta["layout"] ?? "?") kc \(meta["kc"] ?? "?"), this CPU's are \(here.name) kc \(here.kc); the weights are packed at load")
        }
        guard meta["weights_bytes"] == String(weightsBytes) else {
            return Loaded(entries: [:], ignored: "made from another weights file (\(meta["weights_bytes"] ?? "?") bytes, this one has \(weightsBytes))")
        }
        let layers = try JSONParser.parse(meta["layers"] ?? "{}")
        var entries: [String: CachedConvWeights] = [:]
        for (name, tensor) in file.tensors {
            guard let layer = layers[name], tensor.dtype == .float32, tensor.isContiguous, tensor.elementCount > 0,
                  let base = tensor.storage.bytes.baseAddress else { continue }
            let raw = base + tensor.offset * 4
            guard Int(bitPattern: raw) % MemoryLayout<Float>.alignment == 0 else { continue }
            let kind: CachedConvWeights.Kind
            switch layer["path"]?.stringValue {
            case "gemm": kind = .gemm
            case "winograd":
                guard let m = layer["tile"]?.intValue else { continue }
                kind = .winograd(tile: m)
            default: continue
            }
            var errors: [Int: Double] = [:]
            for (tile, e) in layer["errors"]?.objectValue ?? [] {
                guard let m = Int(tile), let v = e.doubleValue else { continue }
                errors[m] = v
            }
            entries[name] = CachedConvWeights(kind: kind, kc: here.kc, winogradErrors: errors,
                                              floats: raw.assumingMemoryBound(to: Float.self),
                                              count: tensor.elementCount, owner: tensor.storage)
        }
        return Loaded(entries: entries, ignored: nil)
    }

    /// Writes the cache of `engine`'s float32 convolution weights (bound from the package's weights
    /// file) into the package directory `dir` (atomically: a temporary file renamed into place). Returns the layers and bytes
    /// written; nothing is written (0, 0) where the packed kernels do not run.
    @discardableResult
    package static func write(_ engine: Engine, packageDirectory dir: String) throws -> (layers: Int, bytes: Int) {
        guard let here = CachedConvWeights.layout else { return (0, 0) }
        guard let weightsBytes = weightsBytes(in: dir) else {
            throw BLError(.io, "cannot stat the package's weights", file: path(ModelPackage.weightsFile, in: dir))
        }
        let entries = engine.cacheableWeights
        guard !entries.isEmpty else { return (0, 0) }
        var layers: [(String, JSON)] = []
        var declared: [(name: String, tensor: Tensor)] = []
        let shapeOnly = ByteStorage(copying: [UInt8](repeating: 0, count: 8))
        var byName: [String: CachedConvWeights] = [:]
        for (name, w) in entries {
            var item: [(String, JSON)]
            switch w.kind {
            case .gemm: item = [("path", .string("gemm"))]
            case .winograd(let m): item = [("path", .string("winograd")), ("tile", .int(Int64(m)))]
            }
            let errors = w.winogradErrors.sorted { $0.key > $1.key }.map { (String($0.key), JSON.double($0.value)) }
            if !errors.isEmpty { item.append(("errors", .object(errors))) }
            layers.append((name, .object(item)))
            declared.append((name, try Tensor(dtype: .float32, shape: [w.count], strides: [0], storage: shapeOnly)))
            byName[name] = w
        }
        let metadata: [(String, String)] = [
            ("format", format), ("version", version), ("layout", here.name), ("kc", String(here.kc)),
            ("weights_bytes", String(weightsBytes)), ("layers", JSON.object(layers).serialized()),
        ]
        try SafetensorsWriter.write(declared, metadata: metadata, to: path(fileName, in: dir)) { name, _ in
            guard let w = byName[name] else { throw BLError.invariant("kernel cache: no layer '\(name)'") }
            let storage = ByteStorage(slice: UnsafeRawBufferPointer(start: w.floats, count: w.count * 4), owner: w)
            return try Tensor(dtype: .float32, shape: [w.count], storage: storage)
        }
        return (entries.count, entries.reduce(0) { $0 + $1.weights.count * 4 })
    }
}
