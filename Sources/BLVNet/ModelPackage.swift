import BLCore
import BLGraph
import BLSafetensors

/// A converted model on disk: a directory holding
/// - `graph.json`: the graph IR (`Graph.json`),
/// - `weights.safetensors`: every weight the graph declares, under the graph's names,
/// - `metadata.json`: `{"format": "blconvert-model", "version": 1, "config": {...}, "source":
///   {"file", "sha256"}, "blconvert_version", "dtype", "optimized"}`, plus `"dtype_policy"` for
///   float16 / bfloat16 packages,
/// - optionally `kernels.safetensors`: the kernel cache (the convolution weights prepared for the CPU
///   kernels, see `KernelCache` in BLConvert), derived data that readers of the package ignore.
///
/// Storage dtype: a float32 package stores every weight as float32. A float16 or bfloat16 package
/// stores the convolution and linear weight matrices in that dtype (nearly all the bytes) and every
/// other weight (biases, BatchNorm vectors, TAM's `[C, 1, 1, 1]` kernels) as float32: see
/// `storedDType(of:in:)`. Packages storing every weight in the half dtype (written before this
/// policy) read and run as well: any float dtype is accepted per tensor.
package struct ModelPackage: Sendable {
    package static let format = "blconvert-model"
    package static let formatVersion = 1
    package static let graphFile = "graph.json"
    package static let weightsFile = "weights.safetensors"
    package static let metadataFile = "metadata.json"

    package var graph: Graph
    /// The weights (as read: each in its stored dtype; as imported: float32 until written). Use
    /// `Tensor.floats()` or `converted(to:)` to compute.
    package var weights: [String: Tensor]
    package var config: BLVNetConfig
    package var source: Source?
    /// The package's storage dtype: that of its convolution and linear weights.
    package var dtype: DType
    /// Whether BatchNorm folding and ReLU fusion were applied.
    package var optimized: Bool
    package var toolVersion: String

    package init(graph: Graph, weights: [String: Tensor], config: BLVNetConfig, source: Source?, dtype: DType,
                optimized: Bool, toolVersion: String) {
        self.graph = graph
        self.weights = weights
        self.config = config
        self.source = source
        self.dtype = dtype
        self.optimized = optimized
        self.toolVersion = toolVersion
    }

    /// A package from an imported checkpoint; with `optimize`, BatchNorm is folded and ReLU fused
    /// (taps of pre-ReLU modules keep their own ReLU node, see `GraphPasses`). The checkpoint pages
    /// holding weights that folding replaced are released from memory (`model` stays readable).
    package init(importing model: ImportedModel, optimize: Bool = true, dtype: DType = .float32, source: Source?,
                toolVersion: String) throws {
        var graph = model.graph, weights = model.weights
        if optimize { (graph, weights) = try GraphPasses.optimize(graph, weights: weights, releasingInputs: true) }
        self.init(graph: graph, weights: weights, config: model.config, source: source, dtype: dtype,
                  optimized: optimize, toolVersion: toolVersion)
    }

    /// Whether `path` is a directory holding a package's `metadata.json` and `graph.json` (what
    /// `--force` may replace).
    package static func isPackage(_ path: String) -> Bool {
        FileKind.of(path) == .directory && FileKind.of(path + "/" + metadataFile) == .regular
            && FileKind.of(path + "/" + graphFile) == .regular
    }

    /// The dtypes a package may store weights in.
    package static let storableDTypes: [DType] = [.float32, .float16, .bfloat16]

    /// Names of the weights a half-precision package stores in its half dtype: the weight
    /// matrices of `conv2d` and `linear` nodes (biases, BatchNorm vectors and TAM kernels stay float32).
    package static func halfPrecisionWeights(in graph: Graph) -> Set<String> {
        var names = Set<String>()
        for node in graph.nodes {
            switch node.op {
            case .conv2d(let c): names.insert(c.weight)
            case .linear(let l): names.insert(l.weight)
            default: break
            }
        }
        return names
    }

    /// The dtype weight `name` is stored in by a package of dtype `dtype` over `graph`.
    package static func storedDType(of name: String, in graph: Graph, dtype: DType) -> DType {
        dtype == .float32 || halfPrecisionWeights(in: graph).contains(name) ? dtype : .float32
    }

    /// How the package's dtype applies to its weights, as `metadata.json` records it (nil for float32).
    package static func dtypePolicy(_ dtype: DType) -> String? {
        dtype == .float32 ? nil : "conv and linear weights in \(dtype.torchName), vectors in float32"
    }

    package var metadataJSON: JSON {
        .object([
            ("format", .string(ModelPackage.format)),
            ("version", .int(Int64(ModelPackage.formatVersion))),
            ("config", config.json),
            ("source", source.map { .object([("file", .string($0.fileName)), ("sha256", .string($0.sha256))]) } ?? .null),
            ("blconvert_version", .string(toolVersion)),
            ("dtype", .string(dtype.torchName)),
        ] + (ModelPackage.dtypePolicy(dtype).map { [("dtype_policy", JSON.string($0))] } ?? []) + [
            ("optimized", .bool(optimized)),
        ])
    }
}
