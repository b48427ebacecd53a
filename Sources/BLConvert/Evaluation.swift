import BLCore
import BLEval
import BLMedia
import BLVideo
import Foundation

/// How the reference `test.py` evaluates a list: the options that change the numbers.
public struct EvaluationSettings: Sendable, Equatable {
    /// RGB pictures, or optical flow as `_x`/`_y` grayscale pictures (5 consecutive per frame).
    public enum Modality: String, Sendable, Equatable, CaseIterable {
        case rgb, flow
    }

    public var modality: Modality
    /// The crop side (`--input_size`, 224).
    public var inputShape: Int
    /// Scale the shorter side to `int(inputShape / 0.875 + 0.5)` before cropping (false:
    /// `--disable_scaleup`, scale to `inputShape`).
    public var scaleUp: Bool
    /// Crops per clip: 1 (centre), 3, 5 or 10 (`GroupOverSample`, 10 with horizontal flips).
    public var crops: Int
    /// Clips per video (`--num_clips`).
    public var clips: Int
    /// Dense sampling (`--dense_sampling`) with `framesPerGroup` frames between samples.
    public var denseSampling: Bool
    public var framesPerGroup: Int
    /// Frame file names, Python format of one integer (`{:05d}.jpg`).
    public var imageTemplate: String
    /// List separator: nil detects `" "` or `";"`.
    public var separator: String?
    /// Skip list lines with fewer frames than this (`--filter_video`).
    public var filterVideo: Int

    public init(modality: Modality = .rgb, inputShape: Int = 224, scaleUp: Bool = true, crops: Int = 1, clips: Int = 1,
                denseSampling: Bool = false, framesPerGroup: Int = 1, imageTemplate: String = "{:05d}.jpg",
                separator: String? = nil, filterVideo: Int = 0) {
        self.modality = modality
        self.inputShape = inputShape
        self.scaleUp = scaleUp
        self.crops = crops
        self.clips = clips
        self.denseSampling = denseSampling
        self.framesPerGroup = framesPerGroup
        self.imageTemplate = imageTemplate
        self.separator = separator
        self.filterVideo = filterVideo
    }

    /// The shorter side frames are scaled to before cropping.
    public var scaleSize: Int { ViewTransform.scaleSize(inputShape: inputShape, scaleUp: scaleUp) }

    /// The settings as the evaluation pipeline takes them, checked.
    package func internalSettings() throws -> EvalSettings {
        var s = EvalSettings(imageTemplate: try ImageTemplate(imageTemplate))
        s.modality = modality == .rgb ? .rgb : .flow
        s.inputShape = inputShape
        s.scaleUp = scaleUp
        s.crops = crops
        s.clips = clips
        s.dense = denseSampling
        s.framesPerGroup = framesPerGroup
        s.separator = separator
        s.filterVideo = filterVideo
        try s.validate()
        return s
    }
}

/// What one video of a list gave.
public struct VideoEvaluation: Sendable, Equatable {
    /// The list line's path and labels.
    public let path: String
    public let labels: [Int]
    /// Logits averaged over the views (float64), their softmax, and the five best classes; nil
    /// for a video that failed under `.skip`.
    public let logits: [Double]?
    public let probabilities: [Double]?
    public let top5: [Int]?
    /// Why the video failed, under `.skip`.
    public let error: String?

    init(_ r: VideoResult) {
        path = r.entry.path
        labels = r.entry.labels
        logits = r.logits
        probabilities = r.probs
        top5 = r.top5
        error = r.error
    }
}

/// The result of evaluating a list.
public struct EvaluationReport: Sendable {
    /// Every video, in list order.
    public let videos: [VideoEvaluation]
    /// Top-1 and top-5 accuracy in percent over the labelled videos (failed ones count as misses);
    /// nil for a test list (no labels).
    public let top1: Double?
    public let top5: Double?
    /// `Val@224(256) (# crops = 3, # clips = 2): Top@1: ... Top@5: ...`, as the reference prints it.
    public let summaryLine: String

    package let report: EvalReport

    init(_ report: EvalReport) {
        self.report = report
        videos = report.results.map(VideoEvaluation.init)
        top1 = report.accuracy(1)
        top5 = report.accuracy(5)
        summaryLine = report.summaryLine
    }
}

/// Options of an evaluation run that do not change its numbers.
public struct EvaluationOptions: Sendable, Equatable {
    /// What a video that cannot be read does: stop the run (throw), or record an error and go on.
    public enum OnError: String, Sendable, Equatable {
        case stop, skip
    }

    /// Threads decoding and preprocessing the next videos while the model runs the current one.
    public var workers: Int
    public var onError: OnError
    /// The list's paths are video files (`.webm`, `.mp4`, ...) rather than folders of frames; frame
    /// numbers count decoded frames, as the reference extraction numbers its JPEG files.
    public var videoFiles: Bool
    /// This shard of the list, `index` in `0..<count` (every `count`-th video from `index`).
    public var shard: (index: Int, count: Int)?

    public init(workers: Int = 2, onError: OnError = .stop, videoFiles: Bool = false, shard: (index: Int, count: Int)? = nil) {
        self.workers = workers
        self.onError = onError
        self.videoFiles = videoFiles
        self.shard = shard
    }

    public static func == (a: EvaluationOptions, b: EvaluationOptions) -> Bool {
        a.workers == b.workers && a.onError == b.onError && a.videoFiles == b.videoFiles
            && a.shard?.index == b.shard?.index && a.shard?.count == b.shard?.count
    }

    package func internalOptions() throws -> EvalRunOptions {
        let shard = try self.shard.map { s -> Shard in
            guard s.count >= 1, s.index >= 0, s.index < s.count else {
                throw BLError(.invalidArgument, "shard \(s.index)/\(s.count): the index must be in 0..<count")
            }
            return Shard(index: s.index, count: s.count)
        } ?? .whole
        return EvalRunOptions(workers: workers, onError: onError == .stop ? .stop : .skip, shard: shard,
                              frames: videoFiles ? .videos(decode: Self.decodeVideo) : .pictures)
    }

    /// Frames of a video file as the reference extraction writes them (short side 256).
    @Sendable static func decodeVideo(_ path: String, _ frames: [Int]) throws -> [Image8] {
        try VideoFrames.frames(path, at: frames)
    }
}

extension BLVNetModel {
    /// Evaluates a validation (or test) list exactly as the reference `test.py` does: per video,
    /// `clips x crops` views, logits averaged over the views, then softmax; top-1/top-5 over the
    /// labelled videos.
    ///
    /// - Parameters:
    ///   - list: the list file, `path start_frame end_frame label...` per line.
    ///   - root: the folder the list's paths are relative to.
    ///   - settings: the options of `test.py` that change the numbers.
    ///   - options: workers, errors, video files, shard.
    ///   - progress: called after each video with (videos done, videos in all).
    public func evaluate(list: URL, root: URL? = nil, settings: EvaluationSettings = .init(),
                         options: EvaluationOptions = .init(),
                         progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws(BLConvertError) -> EvaluationReport {
        try bridged { () throws -> EvaluationReport in
            let s = try settings.internalSettings()
            let listFile = try MappedFile(path: list.path)
            guard let text = String(validating: Array(listFile.bytes), as: UTF8.self) else {
                throw BLError(.format, "the list is not UTF-8 text", file: list.path)
            }
            let videos = try VideoList.parse(text: text, file: list.path, separator: s.separator, filterVideo: s.filterVideo,
                                             modality: s.modality)
            let runOptions = try options.internalOptions()
            let evaluator = try Evaluator(list: videos, settings: s, model: evalModel, root: root?.path ?? "", options: runOptions)
            let results = try evaluator.evaluate(progress: { p in progress?(p.done, p.total) })
            let header = EvalHeader(model: list.lastPathComponent, fingerprint: fingerprint, listPath: list.path,
                                    listSHA256: SHA256.hex(listFile.bytes), separator: videos.separator,
                                    videos: videos.entries.count, labelled: videos.hasLabels, settings: s.json,
                                    shard: runOptions.shard)
            return EvaluationReport(EvalReport(header: header, results: results))
        }
    }

    /// The model as the evaluation pipeline runs it: views through the engine.
    package var evalModel: EvalModel {
        let engine = self.engine
        return EvalModel(frames: configuration.frames, inputChannels: configuration.inputChannels,
                         classes: configuration.classes, fingerprint: fingerprint) { views in try engine.run(views) }
    }

    /// SHA-256 of what decides the computation: the configuration that shapes the graph and every
    /// weight's name, dtype, shape and bytes (results files of a resumed run must match it).
    package var fingerprint: String {
        var sha = SHA256()
        let c = configuration.internalConfig
        sha.update(Array("blocks \(c.blocks) little \(c.littleBlocks) alpha \(c.alpha) T \(c.frames) blend \(c.blendingFrames) classes \(c.numClasses) channels \(c.inputChannels) head \(c.head.rawValue)\n".utf8))
        for name in weights.keys.sorted() {
            guard let t = weights[name] else { continue }
            sha.update(Array("\(name) \(t.dtype.torchName) \(t.shape)\n".utf8))
            t.withContiguousBytes { sha.update($0) }
        }
        return SHA256.hex(sha.finalize())
    }
}
