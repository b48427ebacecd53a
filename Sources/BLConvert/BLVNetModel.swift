import BLCore
import BLEngine
import BLGraph
import BLKernels
import BLMedia
import BLVNet
import Foundation

/// A bLVNet-TAM network ready to run on the CPU: loaded from a model package (written by
/// ``Converter/importCheckpoint(_:to:precision:frames:optimize:overwrite:kernelCache:progress:)`` or `blconvert import`)
/// or imported in memory from a PyTorch or HDF5 checkpoint.
///
/// ```swift
/// let model = try BLVNetModel(package: URL(fileURLWithPath: "r50.blc"))
/// let prediction = try model.predict(frameFolder: URL(fileURLWithPath: "video_frames"), top: 5)
/// for c in prediction.classes { print(c.index, c.probability) }
/// ```
///
/// A model runs one batch at a time: calls from several threads are safe and take turns.
public final class BLVNetModel: Sendable {
    /// Depth, widths, frames and classes of the network.
    public let configuration: ModelConfiguration
    /// How the weights are stored (a checkpoint imported in memory is float32).
    public let precision: WeightPrecision
    /// Where the model came from.
    public let origin: Origin
    /// The options the model computes with.
    public let options: RuntimeOptions

    /// Where a model came from.
    public enum Origin: Sendable, Equatable {
        /// A model package: the checkpoint it was made from (file name and SHA-256), when recorded.
        case package(sourceFile: String?, sourceSHA256: String?)
        /// A checkpoint imported in memory, with its format (`pytorch-zip`, `pytorch-legacy`, `hdf5`, ...).
        case checkpoint(format: String)
    }

    package let graph: Graph
    package let weights: [String: Tensor]
    package let engine: Engine
    /// The package as read (nil for a checkpoint imported in memory).
    package let modelPackage: ModelPackage?
    /// Why the package's kernel cache was not used, when it has one that does not apply.
    package let kernelCacheIgnored: String?

    /// How many layers took their prepared weights from the package's kernel cache, of how many
    /// could (float32 GEMM and Winograd layers).
    package var kernelCacheUse: (cached: Int, layers: Int) {
        let paths = engine.layerPaths.filter { layer in
            if case .winograd = layer.path { return true }
            return layer.path == .gemm
        }
        return (paths.filter { $0.fromCache }.count, paths.count)
    }

    /// Loads a model package directory.
    public convenience init(package url: URL, options: RuntimeOptions = .init()) throws(BLConvertError) {
        let path = url.path
        let p = try bridged { try ModelPackage.read(path) }
        // The package's kernel cache, when it can serve this run (float32 compute).
        var cache = KernelCache.Loaded(entries: [:], ignored: nil)
        if options.precision == .float32 { cache = KernelCache.read(packageDirectory: path) }
        try self.init(graph: p.graph, weights: p.weights, config: p.config, dtype: p.dtype,
                      origin: .package(sourceFile: p.source?.fileName, sourceSHA256: p.source?.sha256),
                      package: p, options: options, kernelCache: cache)
    }

    /// Imports a checkpoint in memory (BatchNorm folded, float32), as ``Converter`` would write it.
    ///
    /// - Parameters:
    ///   - url: the checkpoint file.
    ///   - frames: T, the frames per clip; when nil it comes from a training checkpoint's
    ///     `arch`, else from the file's own name (`...-f8x2...` means 16), else the load fails and
    ///     asks for it. See ``FrameCount``.
    ///   - options: threads and weight memory.
    public convenience init(checkpoint url: URL, frames: Int? = nil, options: RuntimeOptions = .init()) throws(BLConvertError) {
        let (p, format) = try bridged { () throws -> (ModelPackage, String) in
            let (model, checkpoint) = try CheckpointImport.importModel(path: url.path, frames: frames)
            let p = try ModelPackage(importing: model, optimize: true, dtype: .float32, source: nil,
                                     toolVersion: BLConvertInfo.version)
            return (p, checkpoint.format.rawValue)
        }
        try self.init(graph: p.graph, weights: p.weights, config: p.config, dtype: .float32,
                      origin: .checkpoint(format: format), package: nil, options: options)
    }

    /// A model package (a directory) or a checkpoint (a file), whichever `url` names. `frames`
    /// is for checkpoints; given for a package, it must match the package's T.
    public convenience init(contentsOf url: URL, frames: Int? = nil, options: RuntimeOptions = .init()) throws(BLConvertError) {
        let path = url.path
        guard FileKind.of(path) == .directory else {
            try self.init(checkpoint: url, frames: frames, options: options)
            return
        }
        guard access(path + "/" + ModelPackage.graphFile, F_OK) == 0 else {
            throw BLConvertError(.invalidArgument, "a directory but not a model package (no graph.json): give a package written by `blconvert import` or a checkpoint file", file: path)
        }
        try self.init(package: url, options: options)
        if let f = frames, f != configuration.frames {
            throw BLConvertError(.invalidArgument, "--frames \(f) does not match the package's T = \(configuration.frames) (the frame count is fixed at import)", file: path)
        }
    }

    private init(graph: Graph, weights: [String: Tensor], config: BLVNetConfig, dtype: DType, origin: Origin,
                 package: ModelPackage?, options: RuntimeOptions,
                 kernelCache: KernelCache.Loaded = .init(entries: [:], ignored: nil)) throws(BLConvertError) {
        if let t = options.threads, t < 1 || t > 1024 {
            throw BLConvertError(.invalidArgument, "threads must be between 1 and 1024, got \(t)")
        }
        guard let precision = WeightPrecision(dtype: dtype) else {
            throw BLConvertError(.unsupported, "weights stored as \(dtype.torchName) (f32, f16 or bf16 are supported)")
        }
        let conversion: WeightConversion = dtype != .float32 && options.halfPrecisionWeights == .native ? .perUse : .atBind
        self.engine = try bridged { try Engine(graph: graph, weights: weights, context: options.kernelContext,
                                               weightConversion: conversion, precision: options.precision,
                                               kernelCache: kernelCache.entries) }
        self.kernelCacheIgnored = kernelCache.ignored
        if let why = kernelCache.ignored {
            Warnings.emit("the package's kernel cache is not used: \(why) (`blconvert prepare PACKAGE` writes one for this CPU)")
        }
        self.graph = graph
        self.weights = weights
        self.configuration = ModelConfiguration(config)
        self.precision = precision
        self.origin = origin
        self.options = options
        self.modelPackage = package
    }

    /// The preprocessing the reference evaluates this model with: T frames, scale 224, crop 224.
    public var defaultPreprocessing: Preprocessing { Preprocessing(frames: configuration.frames) }

    /// Runs a batch of clips and returns the classifier's output, one row per clip.
    public func logits(for clip: Clip) throws(BLConvertError) -> Logits {
        try Logits(tensor: bridged { try engine.run(clip.tensor) })
    }

    /// The best classes of every clip in the batch, with softmax probabilities.
    /// - Parameters:
    ///   - clip: one or more clips.
    ///   - top: how many classes per clip.
    ///   - labels: class names, one per class, to fill in ``Prediction/RankedClass/label``.
    public func predict(clip: Clip, top: Int = 5, labels: [String]? = nil) throws(BLConvertError) -> [Prediction] {
        if let labels, labels.count != configuration.classes {
            throw BLConvertError(.invalidArgument, "\(labels.count) labels for a model of \(configuration.classes) classes")
        }
        let l = try logits(for: clip)
        return (0..<l.count).map { Prediction(logits: l, sample: $0, top: top, labels: labels) }
    }

    /// Predicts from a whole video's frames, in order: T of them are sampled and preprocessed as
    /// the reference evaluation does (`preprocessing`, by default ``defaultPreprocessing``).
    public func predict(frames: [RGBImage], top: Int = 5, labels: [String]? = nil,
                        preprocessing: Preprocessing? = nil) throws(BLConvertError) -> Prediction {
        let p = try preprocessingForRGB(preprocessing)
        return try predict(try p.clip(fromVideoFrames: frames), top: top, labels: labels)
    }

    /// Predicts from a folder of frames (`00001.jpg`, ... or `.png`), decoding only the sampled ones.
    public func predict(frameFolder url: URL, top: Int = 5, labels: [String]? = nil,
                        preprocessing: Preprocessing? = nil) throws(BLConvertError) -> Prediction {
        let p = try preprocessingForRGB(preprocessing)
        return try predict(try p.clip(fromFrameFolder: url), top: top, labels: labels)
    }

    /// Predicts from a video file, decoded as the reference's frame extraction does (see
    /// ``Preprocessing/clip(fromVideo:)``); only the sampled frames are kept in memory.
    public func predict(video url: URL, top: Int = 5, labels: [String]? = nil,
                        preprocessing: Preprocessing? = nil) throws(BLConvertError) -> Prediction {
        let p = try preprocessingForRGB(preprocessing)
        let made = try p.clip(fromVideo: url)
        return try predict((made.clip, made.frameNumbers), top: top, labels: labels)
    }

    /// The prediction for a clip made from frames, with the frame numbers used.
    private func predict(_ made: (clip: Clip, frameNumbers: [Int]), top: Int, labels: [String]?) throws(BLConvertError) -> Prediction {
        var prediction = try predict(clip: made.clip, top: top, labels: labels)[0]
        prediction.frameNumbers = made.frameNumbers
        return prediction
    }

    /// `preprocessing` (or the default) after checking that it fits this model.
    package func preprocessingForRGB(_ preprocessing: Preprocessing?) throws(BLConvertError) -> Preprocessing {
        guard configuration.inputChannels == 3 else {
            throw BLConvertError(.invalidArgument, "frames give RGB clips, but this model takes \(configuration.inputChannels) channels per frame; pass a clip tensor")
        }
        let p = preprocessing ?? defaultPreprocessing
        guard p.frames == configuration.frames else {
            throw BLConvertError(.invalidArgument, "the preprocessing samples \(p.frames) frames; this model takes T = \(configuration.frames)")
        }
        return p
    }

    /// The work and memory of one run of `batch` clips of `height` x `width`.
    public func cost(height: Int, width: Int, batch: Int = 1) throws(BLConvertError) -> ModelCost {
        let (c, plan) = try bridged { () throws -> (GraphCost, MemoryPlanSummary) in
            (try graph.cost(batch: batch, height: height, width: width),
             try engine.memoryPlan(batch: batch, height: height, width: width))
        }
        return ModelCost(multiplyAccumulates: c.totalMACs, parameters: c.parameters,
                         activationBytes: plan.activationBytes, scratchBytes: plan.scratchBytes)
    }
}

/// What one run of a model costs.
public struct ModelCost: Sendable, Equatable {
    /// Multiply-accumulates of the convolutions, TAMs and the classifier (FLOPs are twice this).
    public let multiplyAccumulates: Int
    /// Parameters of the network as it runs (BatchNorm folded into the convolutions when optimized).
    public let parameters: Int
    /// Bytes of the planned activation memory (values whose lifetimes do not overlap share it).
    public let activationBytes: Int
    /// Bytes of scratch memory (convolution tiles, weight conversion).
    public let scratchBytes: Int
}

extension RuntimeOptions {
    package var kernelContext: KernelContext {
        var c = KernelContext()
        if let t = threads { c.threads = t }
        return c
    }
}
