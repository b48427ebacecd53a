import ArgumentParser
import BLConvert
import BLCore
import BLEval
import BLMedia
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on a whole video list exactly as the reference test.py: top-1/top-5.",
        discussion: """
        The list has the reference layout, one video a line:
          path start_frame end_frame label [label ...]    (separator " " or ";")
        `path` is a folder of frames named by --image-tmpl (Python format, default
        {:05d}.jpg), relative to --root; with --videos, a video file (.webm, .mp4,
        ...) decoded as the reference's extraction does, frame numbers counting
        its decoded frames (the list `blconvert frames` writes). No label on any
        line: a test list (predictions only). Several labels: a hit when any is
        among the top k.

        Per video, as test.py: the --num-clips clips of uniform fixed-offset (or
        --dense-sampling) frames, each frame scaled (shorter side to
        int(input_shape / 0.875 + 0.5), or input_shape with --disable-scaleup) and
        cut into --num-crops crops (1 centre; 3, 5, or 10 with mirrors); the views
        run through the model, their logits are averaged, then the softmax.

        Prints test.py's line (Val@224(256) (# crops = 1, # clips = 1): Top@1 ...).
        --results FILE keeps each video's result as it finishes (JSON lines);
        after a kill or Ctrl-C, run again with --resume FILE to continue.
        --shard K/N evaluates every N-th video from the K-th (also taken from
        Slurm array or Kubernetes Indexed Job variables); join the parts with
        `blconvert eval-merge`.

        Exit status: 0 done, 2 bad input (a bad list, a video that cannot be
        read; with --on-error skip every output is still written, the video
        recorded as an error and counted as a miss), 130 interrupted.

        Examples:
          blconvert eval r50.blc --list val_list.txt --root frames/
          blconvert eval r50.blc --list videos.txt --root videos/ --videos
          blconvert eval r50.blc --list val.txt --num-crops 3 --num-clips 2 --json
          blconvert eval m.pth.tar --frames 16 --list test.txt --predictions p.csv
          blconvert eval r50.blc --list val.txt --results run.jsonl --workers 3
          blconvert eval r50.blc --list val.txt --resume run.jsonl --details d.npy
          blconvert eval r50.blc --list val.txt --shard 2/8 --json > part2.json
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "The video list: path start_frame end_frame [label...] per line.")
    var list: String

    @Option(name: .long, help: "Folder the list's paths are relative to (os.path.join(root, path)).")
    var root: String = ""

    @Flag(name: .long, help: "The list's paths are video files, decoded as the reference extraction (short side 256), not folders of frames.")
    var videos = false

    @Option(name: .long, help: "Field separator of the list, \" \" or \";\" (default: \";\" when the first line has one).")
    var separator: String?

    @Option(name: .customLong("image-tmpl"), help: "Frame file names, Python format of the frame number.")
    var imageTemplate: String = "{:05d}.jpg"

    @Option(name: .long, help: "Clips per video (uniform: offsets range(-n//2+1, n//2+1) from the group centres).")
    var numClips: Int = 1

    @Option(name: .long, help: "Crops per clip: 1 (centre), 3, 5 or 10 (5 and their mirrors).")
    var numCrops: Int = 1

    @Option(name: .long, help: "The side of each crop.")
    var inputShape: Int = 224

    @Flag(name: .long, help: "Scale the shorter side to the input shape, not int(input_shape / 0.875 + 0.5).")
    var disableScaleup = false

    @Flag(name: .long, help: "Dense (I3D) sampling: T frames --frames-per-group apart per clip.")
    var denseSampling = false

    @Option(name: .long, help: "The dense sampling stride.")
    var framesPerGroup: Int = 1

    @Option(name: .long, help: "rgb, or flow (FRAME_x/FRAME_y grayscale pictures, 5 consecutive per frame).")
    var modality: String = "rgb"

    @Option(name: .long, help: "Drop labelled videos with fewer frames (the reference uses 3 for Something-Something, 30 for Kinetics).")
    var filterVideo: Int = 0

    @Option(name: .long, help: "Write the softmax outputs [videos, classes] float64 here (.npy), as test.py's details file.")
    var details: String?

    @Option(name: .long, help: "Write test.py's predictions file here: video_id;p1;p2;p3;p4;p5 per video.")
    var predictions: String?

    @Option(name: .long, help: "Keep each video's result in this new JSON-lines file as it finishes.")
    var results: String?

    @Option(name: .long, help: "Continue the results file of an interrupted run (created when missing).")
    var resume: String?

    @Option(name: .long, help: "Evaluate shard K of N (every N-th video from the K-th, K from 0).")
    var shard: String?

    @Option(name: .long, help: "Threads decoding and preprocessing the next videos while the model runs (0: none).")
    var workers: Int = 2

    @Option(name: .long, help: "At most this many views per model run (default: all views of a video).")
    var viewsPerRun: Int?

    @Option(name: .long, help: ArgumentHelp("A video that cannot be evaluated: stop (exit 2) or skip (record it as an error, a miss, and go on).", valueName: "stop|skip"))
    var onError: String = "stop"

    @Option(name: .long, help: "Seconds between progress lines when stderr is not a terminal.")
    var progressEvery: Double = 30

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var weightMemory: WeightMemoryOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if Modality(rawValue: modality) == nil { throw ValidationError("--modality must be rgb or flow") }
        if ErrorPolicy(rawValue: onError) == nil { throw ValidationError("--on-error must be stop or skip") }
        if ![1, 3, 5, 10].contains(numCrops) { throw ValidationError("--num-crops must be 1, 3, 5 or 10") }
        if numClips < 1 { throw ValidationError("--num-clips must be >= 1") }
        if results != nil && resume != nil { throw ValidationError("give --results FILE (a new run) or --resume FILE (continue one), not both") }
        if !(progressEvery > 0) { throw ValidationError("--progress-every must be > 0") }
    }

    func run() throws {
        let interrupt = InterruptFlag()
        var failed = 0
        let finished = try reportingErrors { () -> Bool in
            let outputs = [details, predictions, results].compactMap { $0 }
            for (option, path) in [("--details", details), ("--predictions", predictions), ("--results", results), ("--resume", resume)] {
                if let path { try checkNotAnInput(path, option: option, inputs: [list, model.model]) }
            }
            if Set(outputs).count != outputs.count { throw BLError(.invalidArgument, "--details, --predictions and --results must name different files") }
            let settings = try EvaluationSettings(
                modality: EvaluationSettings.Modality(rawValue: modality) ?? .rgb, inputShape: inputShape,
                scaleUp: !disableScaleup, crops: numCrops, clips: numClips, denseSampling: denseSampling,
                framesPerGroup: framesPerGroup, imageTemplate: imageTemplate, separator: separator,
                filterVideo: filterVideo).internalSettings()
            let shard = try shard.map { try Shard(parsing: $0) } ?? Shard.fromEnvironment(ProcessInfo.processInfo.environment) ?? .whole

            let listFile = try MappedFile(path: list)
            guard let text = String(validating: Array(listFile.bytes), as: UTF8.self) else {
                throw BLError(.format, "the list is not UTF-8 text", file: list)
            }
            let videos = try VideoList.parse(text: text, file: list, separator: separator, filterVideo: filterVideo,
                                             modality: settings.modality)
            let loaded = try model.load(threads: threads, weights: weightMemory, compute: compute)
            let evalModel = loaded.evalModel
            var runOptions = try EvaluationOptions(videoFiles: self.videos).internalOptions()
            runOptions.workers = workers
            runOptions.viewsPerRun = viewsPerRun
            runOptions.onError = ErrorPolicy(rawValue: onError) ?? .stop
            runOptions.shard = shard
            let evaluator = try Evaluator(list: videos, settings: settings, model: evalModel, root: root, options: runOptions)
            var sha = SHA256()
            listFile.bytes.withUnsafeBytes { sha.update($0) }
            let header = EvalHeader(model: model.model, fingerprint: evalModel.fingerprint, listPath: list,
                                    listSHA256: SHA256.hex(sha.finalize()), separator: videos.separator,
                                    videos: videos.entries.count, labelled: videos.hasLabels,
                                    settings: settings.json, shard: shard)
            let log = try (results ?? resume).map { try ResultsLog(path: $0, header: header, resume: resume != nil) }
            var done: [Int: VideoResult] = [:]
            for (i, r) in log?.previous ?? [:] where i < videos.entries.count {
                var r = r
                r.entry = videos.entries[i]
                done[i] = r
            }
            var collected = done
            interrupt.install()
            defer { interrupt.uninstall() }
            var lastLine = MonotonicClock.seconds()
            let complete = try evaluator.run(done: done, onResult: { r in
                try log?.append(r)
                collected[r.entry.index] = r
                if let e = r.error { Console.err("warning: skipped: \(e)") }
            }, progress: { p in
                Self.showProgress(p, lastLine: &lastLine, every: progressEvery)
            }, shouldStop: { interrupt.isSet })
            Console.progress("")
            if !complete {
                let kept = log.map { "the \(collected.count) finished videos are in \($0.path); run again with --resume \($0.path) to continue" }
                    ?? "no --results file was given, so nothing is kept"
                Console.err("interrupted: \(collected.count) of \(evaluator.shardEntries.count) videos done; \(kept)")
                return false
            }
            let report = EvalReport(header: header, results: Array(collected.values))
            failed = report.failed
            try Self.writeOutputs(report, classes: evalModel.classes, details: details, predictions: predictions,
                                  json: json.json)
            return true
        }
        if !finished { throw ExitCode(130) }
        if failed > 0 { throw Exit.badInput }
    }

    /// The summary on stdout (stderr with --json), then the --json document and the files.
    static func writeOutputs(_ report: EvalReport, classes: Int, details: String?, predictions: String?, json: Bool) throws {
        if let details {
            try report.detailsNPY(classes: classes).withUnsafeBytes { bytes in
                try AtomicFile.writing(to: details) { try $0.write(bytes) }
            }
        }
        if let predictions { try AtomicFile.write(report.predictionsCSV, to: predictions) }
        var summary = report.summaryLine
        if report.header.shard.count > 1 { summary += " (shard \(report.header.shard))" }
        if report.failed > 0 { summary += "\n\(report.failed) of \(report.results.count) videos failed (counted as misses)" }
        if json {
            Console.err(summary)
            Console.out(report.json.strictJSONText)
        } else {
            Console.out(summary)
        }
    }

    /// A progress bar on a terminal; otherwise a line every `every` seconds and at the end.
    static func showProgress(_ p: EvalProgress, lastLine: inout Double, every: Double) {
        let rate = p.seconds > 0 ? Double(p.doneThisRun) / p.seconds : 0
        let eta = rate > 0 ? Double(p.total - p.done) / rate : 0
        let top1 = p.scored > 0 ? "  top-1 " + Format.fixed(100 * Double(p.top1Hits) / Double(p.scored), 2) + "%" : ""
        let figures = "\(p.done)/\(p.total) videos  " + Format.fixed(rate, 2) + " videos/s  ETA " + clock(eta) + top1
        if Console.stderrIsTerminal && Console.capture == nil {
            let width = 24, filled = p.total > 0 ? width * p.done / p.total : width
            Console.progress("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] " + figures)
        } else if MonotonicClock.seconds() - lastLine >= every || p.done == p.total {
            lastLine = MonotonicClock.seconds()
            Console.err("eval: " + figures)
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// Set by SIGINT while a run is going (the first Ctrl-C stops cleanly after the video in hand;
/// a second one ends the process at once).
final class InterruptFlag: @unchecked Sendable {
    private let flag = Locked(false)
    private var source: DispatchSourceSignal?

    var isSet: Bool { flag.withLock { $0 } }

    func install() {
        guard Console.capture == nil else { return }
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler { [flag] in
            let again = flag.withLock { was -> Bool in defer { was = true }; return was }
            if again { _exit(130) }
        }
        s.resume()
        source = s
    }

    func uninstall() {
        source?.cancel()
        source = nil
        if Console.capture == nil { signal(SIGINT, SIG_DFL) }
    }
}
