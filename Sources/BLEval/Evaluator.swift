import BLCore
import BLMedia
import Foundation

/// Runs a batch of views through the model: `[views, T * C, S, S]` float32 in, `[views, classes]`
/// logits out. The engine behind it is the caller's (`Engine.run`, or the library facade's).
package typealias ViewRunner = @Sendable (Tensor) throws -> Tensor

/// The model as an evaluation sees it.
package struct EvalModel: Sendable {
    /// T, frames per clip.
    package var frames: Int
    /// C, input channels per frame (3 RGB, 10 flow).
    package var inputChannels: Int
    package var classes: Int
    /// Identifies the weights and configuration in results files (resume and merge refuse another model's).
    package var fingerprint: String
    package var run: ViewRunner

    package init(frames: Int, inputChannels: Int, classes: Int, fingerprint: String, run: @escaping ViewRunner) {
        self.frames = frames
        self.inputChannels = inputChannels
        self.classes = classes
        self.fingerprint = fingerprint
        self.run = run
    }
}

/// What to do with a video that cannot be evaluated (missing or unreadable frame, ...).
package enum ErrorPolicy: String, Sendable, CaseIterable {
    /// Stop the run with the error (exit 2).
    case stop
    /// Record the video as an error in every output and go on; it counts as a miss.
    case skip
}

/// How an evaluation runs (none of it changes the numbers).
/// Where a video's frames come from.
package enum FrameSource: Sendable {
    /// A folder of pictures per video, named by the settings' image template.
    case pictures
    /// A video file per list line: `decode(path, numbers)` gives the RGB frames with those 1-based
    /// numbers (counting decoded frames, as the reference extraction numbers its files), in order.
    case videos(decode: @Sendable (_ path: String, _ frames: [Int]) throws -> [Image8])
}

package struct EvalRunOptions: Sendable {
    /// Threads decoding and preprocessing the next videos while the model runs (0: in turn).
    package var workers: Int = 2
    /// Views per model run (nil: all views of a video at once).
    package var viewsPerRun: Int? = nil
    package var onError: ErrorPolicy = .stop
    package var shard: Shard = .whole
    package var frames: FrameSource = .pictures

    package init(workers: Int = 2, viewsPerRun: Int? = nil, onError: ErrorPolicy = .stop, shard: Shard = .whole,
                 frames: FrameSource = .pictures) {
        self.frames = frames
        self.workers = workers
        self.viewsPerRun = viewsPerRun
        self.onError = onError
        self.shard = shard
    }
}

/// Progress after each video.
package struct EvalProgress: Sendable {
    /// Videos finished in this shard (resumed ones included) and the shard's total.
    package var done: Int
    package var total: Int
    /// Videos finished by this run, and its seconds so far.
    package var doneThisRun: Int
    package var seconds: Double
    /// Labelled videos finished and top-1 hits among them (resumed ones included).
    package var scored: Int
    package var top1Hits: Int
}

/// Whole-list evaluation as the reference `test.py` does it: per video, the views of
/// `ClipBuilder` through the model, logits averaged over views, then softmax.
package final class Evaluator: Sendable {
    package let list: VideoList
    package let settings: EvalSettings
    package let model: EvalModel
    package let options: EvalRunOptions
    /// Folder the list's paths are relative to (`os.path.join(root, path, ...)`).
    package let root: String
    let builder: ClipBuilder

    /// Checks the settings against the model and every label against its classes.
    package init(list: VideoList, settings: EvalSettings, model: EvalModel, root: String = "",
                 options: EvalRunOptions = .init()) throws {
        try settings.validate()
        guard model.inputChannels == settings.modality.channelsPerFrame else {
            throw BLError(.invalidArgument, "the model takes \(model.inputChannels) channels per frame but --modality \(settings.modality.rawValue) gives \(settings.modality.channelsPerFrame)")
        }
        guard model.classes >= 1, model.frames >= 1 else { throw BLError(.invalidArgument, "the model has no classes or frames") }
        for e in list.entries {
            for l in e.labels where l < 0 || l >= model.classes {
                throw BLError(.invalidArgument, "label \(l) of \(e.described) is not a class of the model (0...\(model.classes - 1))")
            }
        }
        guard options.workers >= 0, options.workers <= 64 else { throw BLError(.invalidArgument, "--workers must be in 0...64") }
        if let v = options.viewsPerRun, v < 1 { throw BLError(.invalidArgument, "views per run must be at least 1") }
        self.list = list
        self.settings = settings
        self.model = model
        self.root = root
        self.options = options
        builder = settings.builder(frames: model.frames)
    }

    /// The videos of this run's shard.
    package var shardEntries: [VideoEntry] { list.entries.filter { options.shard.contains($0.index) } }

    /// The views of one video, `[views, T * C, S, S]` float32, as the reference builds them.
    /// Errors name the video and its list line.
    package func views(of entry: VideoEntry) throws -> Tensor {
        do {
            switch options.frames {
            case .pictures:
                return try builder.build(numFrames: entry.numFrames, startFrame: entry.startFrame, threads: 1) { n in
                    settings.picturePaths(root: root, folder: entry.path, frame: n)
                }.tensor
            case .videos(let decode):
                guard settings.modality == .rgb else {
                    throw BLError(.unsupported, "video files give RGB frames; flow is read from folders of _x/_y pictures")
                }
                let path = EvalSettings.pythonJoin([root, entry.path])
                return try builder.build(numFrames: entry.numFrames, startFrame: entry.startFrame, threads: 1) { numbers in
                    let frames = try decode(path, numbers)
                    guard frames.count == numbers.count else {
                        throw BLError(.format, "\(frames.count) frames decoded for \(numbers.count) asked", file: path)
                    }
                    return zip(numbers, frames).map { n, f in [(f, "\(path) frame \(n)")] }
                }.tensor
            }
        } catch let e as BLError {
            throw e.at(entry.described)
        }
    }

    /// Runs the model on the views and averages its logits over them (in float64).
    package func meanLogits(_ views: Tensor, of entry: VideoEntry) throws -> [Double] {
        let n = views.shape[0]
        let chunk = options.viewsPerRun ?? n
        var sum = [Double](repeating: 0, count: model.classes)
        var start = 0
        do {
            while start < n {
                let count = min(chunk, n - start)
                let part = count == n ? views : try Self.slice(views, start, count)
                let out = try model.run(part)
                guard out.shape == [count, model.classes] else {
                    throw BLError(.mismatch, "the model returned shape \(out.shape) for \(count) views; expected [\(count), \(model.classes)]")
                }
                let v = out.floats()
                guard v.allSatisfy(\.isFinite) else {
                    throw BLError(.numeric, "the model returned NaN or infinite logits")
                }
                for i in 0..<count {
                    for c in 0..<model.classes { sum[c] += Double(v[i * model.classes + c]) }
                }
                start += count
            }
        } catch let e as BLError {
            throw e.at(entry.described)
        }
        return sum.map { $0 / Double(n) }
    }

    /// Views `start ..< start + count` of a contiguous tensor.
    static func slice(_ t: Tensor, _ start: Int, _ count: Int) throws -> Tensor {
        let per = t.shape.dropFirst().reduce(1, *)
        return try Tensor(dtype: t.dtype, shape: [count] + t.shape.dropFirst(), offset: t.offset + start * per,
                          storage: t.storage)
    }

    /// Evaluates the shard's videos not in `done` (indices), in list order: decoding and
    /// preprocessing run ahead on `options.workers` threads (at most `workers + 1` videos
    /// prepared and waiting), the model on the calling thread. `onResult` gets each video's result
    /// as it finishes (on the calling thread, in list order); `progress` follows it. `shouldStop`
    /// is asked before each video: true ends the run early (returns false).
    ///
    /// A failing video stops the run with its error under `.stop`; under `.skip` it is passed to
    /// `onResult` as an error and the run goes on.
    @discardableResult
    package func run(done: [Int: VideoResult] = [:], onResult: (VideoResult) throws -> Void,
                     progress: (EvalProgress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> Bool {
        let entries = shardEntries
        let todo = entries.filter { done[$0.index] == nil }
        var scored = 0, hits = 0
        for r in done.values where r.scored {
            scored += 1
            if r.hit(1) { hits += 1 }
        }
        let start = MonotonicClock.seconds()
        var finished = entries.count - todo.count
        var thisRun = 0
        let prefetch = Prefetch(count: todo.count, workers: options.workers) { [self] k in
            Result { try views(of: todo[k]) }.mapError { $0 as? BLError ?? BLError(.io, "\($0)") }
        }
        defer { prefetch.finish() }
        for (k, entry) in todo.enumerated() {
            if shouldStop() { return false }
            let result: VideoResult
            do {
                let views = try prefetch.take(k).get()
                result = VideoResult(entry: entry, logits: try meanLogits(views, of: entry), views: views.shape[0])
            } catch let e as BLError {
                guard options.onError == .skip else { throw e }
                result = VideoResult(entry: entry, error: e.description)
            }
            try onResult(result)
            finished += 1
            thisRun += 1
            if result.scored {
                scored += 1
                if result.hit(1) { hits += 1 }
            }
            progress(EvalProgress(done: finished, total: entries.count, doneThisRun: thisRun,
                                  seconds: MonotonicClock.seconds() - start, scored: scored, top1Hits: hits))
        }
        return true
    }
}

extension Evaluator {
    /// The whole shard in one call (no results file): every video's result, in list order.
    package func evaluate(progress: (EvalProgress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> [VideoResult] {
        var results: [VideoResult] = []
        try run(onResult: { results.append($0) }, progress: progress, shouldStop: shouldStop)
        return results
    }
}

/// Items `0..<count` made by `make` on worker threads, ahead of a consumer that takes them in
/// order: a worker claims item `k` only while `k < taken + workers + 1`, so at most that many
/// are made and waiting, and the item the consumer waits for is always claimed first.
final class Prefetch<Item: Sendable>: Sendable {
    private struct State {
        var ready: [Int: Item] = [:]
        var claimed = 0
        var taken = 0
        var stopped = false
    }
    private let state = Locked(State())
    private let count: Int
    private let window: Int
    private let make: @Sendable (Int) -> Item
    private let group = DispatchGroup()
    private let inline: Bool

    init(count: Int, workers: Int, make: @escaping @Sendable (Int) -> Item) {
        self.count = count
        self.make = make
        window = workers + 1
        inline = workers == 0
        for _ in 0..<min(workers, count) {
            group.enter()
            let thread = Thread { [self] in
                work()
                group.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func work() {
        let (count, window) = (self.count, self.window)
        while true {
            let next: Int? = state.wait(until: { $0.stopped || $0.claimed >= count || $0.claimed < $0.taken + window }) { s in
                guard !s.stopped, s.claimed < count else { return nil }
                s.claimed += 1
                return s.claimed - 1
            }
            guard let k = next else { return }
            let item = make(k)
            state.update { $0.ready[k] = item }
        }
    }

    /// Item `k` (items are taken in order, each once).
    func take(_ k: Int) -> Item {
        if inline { return make(k) }
        let item = state.wait(until: { $0.ready[k] != nil }) { s -> Item? in
            s.taken = k + 1
            return s.ready.removeValue(forKey: k)
        }
        state.broadcast()  // a worker may claim the next item now
        guard let item else { preconditionFailure("Prefetch: item \(k) was waited for until ready") }
        return item
    }

    /// Stops the workers (after the items they are making) and waits for them.
    func finish() {
        state.update { s in
            s.stopped = true
            s.ready.removeAll()
        }
        group.wait()
    }
}
