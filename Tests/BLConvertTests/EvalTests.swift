import Foundation
import Testing
import ArgumentParser
import BLTestSupport
import BLConvert
import BLCore
import BLEngine
import BLKernels
@testable import BLMedia
@testable import BLEval
@testable import BLCommands

/// The eval-mini case (`Fixtures/eval-mini`, a subset of `../shared/fixtures/eval-mini`) and
/// the flow/dense view hashes (`Fixtures/eval-flow`), both written by the reference pipeline.
enum EvalFixtures {
    static let mini = TestData.fixture("eval-mini")
    static let flow = TestData.fixture("eval-flow")
    static let sharedMini: String? = TestData.sharedRoot.map { $0 + "/eval-mini" }

    static func json(_ path: String) throws -> JSON {
        try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// The mini model (T = 8, 10 classes) behind the engine.
    static func model() throws -> EvalModel {
        try BLVNetModel(checkpoint: URL(fileURLWithPath: CLIFixtures.miniCheckpoint), frames: 8,
                        options: RuntimeOptions(threads: 1)).evalModel
    }

    /// A stand-in model for view tests: T frames of C channels, logits from the views' means.
    static func fakeModel(frames: Int, channels: Int, classes: Int = 10) -> EvalModel {
        EvalModel(frames: frames, inputChannels: channels, classes: classes, fingerprint: "fake") { views in
            let n = views.shape[0], per = views.elementCount / n, v = views.floats()
            let out = (0..<n).flatMap { i -> [Float] in
                let m = v[(i * per)..<((i + 1) * per)].reduce(0, +) / Float(per)
                return (0..<classes).map { Float($0) * m }
            }
            return try Tensor.fromFloats(out, shape: [n, classes])
        }
    }

    static func list(_ path: String, modality: Modality = .rgb) throws -> VideoList {
        try VideoList.parse(text: try String(contentsOfFile: path, encoding: .utf8), file: path, modality: modality)
    }

    /// Settings of a reference.json run.
    static func settings(_ run: JSON) throws -> EvalSettings {
        var s = EvalSettings(imageTemplate: try ImageTemplate("{:05d}.jpg"))
        s.inputShape = run["input_shape"]!.intValue!
        s.crops = run["num_crops"]!.intValue!
        s.clips = run["num_clips"]!.intValue!
        s.scaleUp = run["disable_scaleup"] != .bool(true)
        return s
    }

    static func sha(_ t: Tensor) -> String {
        t.withContiguousBytes { SHA256.hex($0) }
    }
}

@Suite struct EvalParityTests {
    /// Every setting of reference.json on `root`'s videos: view hashes, mean logits against the
    /// float64 reference, top-5 order and the accuracy over these videos.
    func checkParity(listPath: String, root: String, fullRuns: Bool) throws {
        let ref = try EvalFixtures.json(EvalFixtures.mini + "/reference.json")
        let names = try #require(ref["videos"]?.arrayValue).map { $0.stringValue! }
        let labels = try #require(ref["labels"]?.arrayValue).map { $0.intValue! }
        let list = try EvalFixtures.list(listPath)
        let model = try EvalFixtures.model()
        var report = ""
        for run in try #require(ref["runs"]?.arrayValue) {
            let settings = try EvalFixtures.settings(run)
            #expect(settings.scaleSize == run["scale_size"]?.intValue)
            let evaluator = try Evaluator(list: list, settings: settings, model: model, root: root, options: .init(workers: 1))
            var results: [VideoResult] = []
            var worst = 0.0, shaMatches = 0
            try evaluator.run(onResult: { r in
                results.append(r)
                let i = try #require(names.firstIndex(of: r.entry.path))
                let expected = try #require(run["per_video"]?.arrayValue?[i])
                let views = try evaluator.views(of: r.entry)
                if EvalFixtures.sha(views) == expected["input_sha256"]?.stringValue { shaMatches += 1 }
                let f64 = try #require(expected["logits_f64"]?.arrayValue).map { $0.doubleValue! }
                let rel = maxRelative(try #require(r.logits), f64)
                worst = max(worst, rel)
                #expect(rel <= 1e-5, "\(r.entry.path) \(run.serialized())")
                #expect(r.top5 == expected["top5"]?.arrayValue?.map { $0.intValue! }, "\(r.entry.path)")
                #expect(r.entry.labels == [labels[i]])
            })
            #expect(shaMatches == list.entries.count, "\(run.serialized())")
            let report1 = EvalReport(header: EvalHeader(model: "", fingerprint: "", listPath: "", listSHA256: "", separator: " ",
                                                        videos: results.count, labelled: true, settings: settings.json, shard: .whole),
                                     results: results)
            // The reference's accuracy over the same videos, from its own top-5.
            let refHits = results.map { r -> (Bool, Bool) in
                let i = names.firstIndex(of: r.entry.path)!
                let top = run["per_video"]!.arrayValue![i]["top5"]!.arrayValue!.map { $0.intValue! }
                return (top[0] == labels[i], top.contains(labels[i]))
            }
            let n = Double(results.count)
            let t1 = report1.accuracy(1)!, t5 = report1.accuracy(5)!
            #expect(abs(t1 - 100 * Double(refHits.filter(\.0).count) / n) < 1e-9)
            #expect(abs(t5 - 100 * Double(refHits.filter(\.1).count) / n) < 1e-9)
            if fullRuns {
                #expect(abs(t1 - run["top1"]!.doubleValue!) < 1e-9 && abs(t5 - run["top5"]!.doubleValue!) < 1e-9)
            }
            report += "  \(settings.inputShape)(\(settings.scaleSize)) crops \(settings.crops) clips \(settings.clips): worst rel \(worst), sha \(shaMatches)/\(list.entries.count), top1 \(t1)\n"
        }
        FileHandle.standardError.write(Data("eval parity (\(list.entries.count) videos):\n\(report)".utf8))
    }

    @Test func bundledVideosMatchTheReferenceInEverySetting() throws {
        try checkParity(listPath: EvalFixtures.mini + "/val_list.txt", root: EvalFixtures.mini + "/frames", fullRuns: false)
    }

    @Test(.enabled(if: TestData.hasShared))
    func allSixVideosMatchTheReferenceAccuracy() throws {
        let shared = try #require(EvalFixtures.sharedMini)
        try checkParity(listPath: shared + "/val_list.txt", root: shared + "/frames", fullRuns: true)
    }

    /// Flow (x/y grayscale pictures, 5 consecutive frames, inverted mirrored x) and dense sampling:
    /// the views are bit for bit the reference's.
    @Test func flowAndDenseViewsMatchTheReference() throws {
        let ref = try EvalFixtures.json(EvalFixtures.flow + "/reference.json")
        var checked = 0
        for run in try #require(ref["runs"]?.arrayValue) {
            let args = try #require(run["args"]?.arrayValue).map { $0.stringValue! }
            func value(_ name: String) -> String? { args.firstIndex(of: name).map { args[$0 + 1] } }
            var s = EvalSettings(imageTemplate: try ImageTemplate(value("--image-tmpl") ?? "{:05d}.jpg"))
            s.modality = Modality(rawValue: value("--modality") ?? "rgb")!
            s.inputShape = Int(value("--input-shape") ?? "224")!
            s.crops = Int(value("--num-crops") ?? "1")!
            s.clips = Int(value("--num-clips") ?? "1")!
            s.dense = args.contains("--dense-sampling")
            s.framesPerGroup = Int(value("--frames-per-group") ?? "1")!
            s.scaleUp = !args.contains("--disable-scaleup")
            let frames = Int(value("--frames")!)!
            let listName = try #require(run["list"]?.stringValue)
            let root = EvalFixtures.flow + "/" + (run["root"]?.stringValue ?? "frames")
            let list = try EvalFixtures.list(EvalFixtures.flow + "/" + listName, modality: s.modality)
            let model = EvalFixtures.fakeModel(frames: frames, channels: s.modality.channelsPerFrame)
            let evaluator = try Evaluator(list: list, settings: s, model: model, root: root)
            let videos = try #require(run["videos"]?.arrayValue)
            #expect(videos.count == list.entries.count)
            for (entry, expected) in zip(list.entries, videos) {
                let views = try evaluator.views(of: entry)
                #expect(views.shape == expected["shape"]?.arrayValue?.map { $0.intValue! }, "\(args) \(entry.path)")
                #expect(EvalFixtures.sha(views) == expected["input_sha256"]?.stringValue, "\(args) \(entry.path)")
                checked += 1
            }
        }
        #expect(checked == 17)
    }
}

@Suite struct EvalSamplingTests {
    /// `_get_val_indices` of the reference (values printed by the reference code).
    @Test func samplingFollowsTheReference() {
        let cases: [(n: Int, t: Int, clips: Int, dense: Bool, stride: Int, consecutive: Int, expected: [Int])] = [
            (37, 8, 3, false, 1, 1, [2, 6, 11, 16, 20, 25, 30, 34, 3, 7, 12, 17, 21, 26, 31, 35, 4, 8, 13, 18, 22, 27, 32, 36]),
            (10, 8, 4, false, 1, 1, [1, 2, 3, 4, 6, 7, 8, 9, 1, 2, 4, 5, 6, 7, 9, 10, 2, 3, 4, 5, 7, 8, 9, 10, 2, 3, 4, 5, 7, 8, 9, 10]),
            (9, 8, 2, false, 1, 1, [1, 2, 3, 4, 6, 7, 8, 9, 2, 3, 4, 5, 6, 7, 8, 9]),
            (50, 8, 2, true, 2, 1, [1, 3, 5, 7, 9, 11, 13, 15, 35, 37, 39, 41, 43, 45, 47, 49]),
            (6, 8, 3, true, 2, 1, [1, 3, 5, 1, 3, 5, 1, 3, 1, 3, 5, 1, 3, 5, 1, 3, 1, 3, 5, 1, 3, 5, 1, 3]),
            (14, 4, 2, false, 1, 5, [2, 4, 7, 9, 3, 5, 8, 10]),
            (13, 4, 2, true, 2, 5, [1, 3, 5, 7, 2, 4, 6, 8]),
            (40, 4, 5, true, 3, 1, [1, 4, 7, 10, 8, 11, 14, 17, 15, 18, 21, 24, 22, 25, 28, 31, 29, 32, 35, 38]),
        ]
        for c in cases {
            let s = ClipSampling(frames: c.t, clips: c.clips, dense: c.dense, stride: c.stride, consecutive: c.consecutive)
            #expect(s.sampledIndices(numFrames: c.n) == c.expected, "\(c)")
        }
        // Short videos: clip k draws after np.random.seed(k) (values from NumPy).
        let draws: [(seed: UInt32, n: Int, k: Int, sorted: [Int])] = [
            (1, 6, 8, [0, 0, 1, 3, 3, 4, 5, 5]), (2, 6, 8, [0, 0, 0, 2, 2, 3, 3, 5]),
            (1, 3, 16, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2]), (2, 7, 4, [0, 0, 5, 6]), (3, 5, 8, [0, 0, 0, 0, 1, 2, 3, 3]),
        ]
        for d in draws {
            var r = NumpyLegacyRandom(seed: d.seed)
            #expect(r.choice(d.n, count: d.k).sorted() == d.sorted, "\(d)")
        }
        #expect(ClipSampling.linspaceInt(0, 34, count: 3) == [0, 17, 34])
        #expect(ClipSampling.linspaceInt(0, 10, count: 7) == [0, 1, 3, 5, 6, 8, 10])
        #expect(ClipSampling.linspaceInt(0, 0, count: 3) == [0, 0, 0])
        #expect(ClipSampling(frames: 8, clips: 4).clipOffsets == [-1, 0, 1, 2])
        #expect(ClipSampling(frames: 8, clips: 3).clipOffsets == [-1, 0, 1])
        // Loaded frames are clamped to the frame count; the start frame shifts them.
        #expect(ClipSampling(frames: 2, consecutive: 5).frameNumbers(numFrames: 6, startFrame: 1) == [1, 2, 3, 4, 5, 2, 3, 4, 5, 6])
        #expect(ClipSampling(frames: 2).frameNumbers(numFrames: 10, startFrame: 5) == [7, 10])
    }

    @Test func cropLayoutsFollowGroupOverSample() {
        let t = ViewTransform(scale: 256, crop: 224, crops: 3)
        // Landscape 341x256: steps (117 // 4, 32 // 4) = (29, 8): left, right, centre.
        #expect(t.cropOrigins(width: 341, height: 256).map { [$0.left, $0.top] } == [[0, 16], [116, 16], [58, 16]])
        // Portrait: top, bottom, centre.
        #expect(t.cropOrigins(width: 256, height: 341).map { [$0.left, $0.top] } == [[16, 0], [16, 116], [16, 58]])
        let five = ViewTransform(scale: 256, crop: 224, crops: 5)
        #expect(five.cropOrigins(width: 341, height: 256).map { [$0.left, $0.top] } == [[0, 0], [116, 0], [0, 32], [116, 32], [58, 16]])
        #expect(ViewTransform.scaleSize(inputShape: 224, scaleUp: true) == 256)
        #expect(ViewTransform.scaleSize(inputShape: 160, scaleUp: true) == 183)
        #expect(ViewTransform.scaleSize(inputShape: 160, scaleUp: false) == 160)
    }

    @Test func imageTemplatesUsePythonFormat() throws {
        #expect(try ImageTemplate("{:05d}.jpg").format(7) == "00007.jpg")
        #expect(try ImageTemplate("img_{:06d}.png").format(123) == "img_000123.png")
        #expect(try ImageTemplate("{}.jpg").format(42) == "42.jpg")
        #expect(try ImageTemplate("{0:>4}-{0:<3}|{{x}}").format(5) == "   5-5  |{x}")
        #expect(try ImageTemplate("{:x}_{:#06x}_{:+d}").format(255) == "ff_0x00ff_+255")
        #expect(try ImageTemplate("{:,d}").format(1234567) == "1,234,567")
        for bad in ["frame.jpg", "{:05.2d}.jpg", "{1}.jpg", "{:05f}.jpg", "{.jpg", "a}.jpg", "{!r}.jpg"] {
            #expect(throws: BLError.self, "\(bad)") { try ImageTemplate(bad) }
        }
    }

    @Test func shardsSplitTheListAndComeFromSchedulers() throws {
        #expect(try Shard(parsing: "2/4") == Shard(index: 2, count: 4))
        for bad in ["4/4", "-1/3", "1", "a/b", "1/0"] { #expect(throws: BLError.self, "\(bad)") { try Shard(parsing: bad) } }
        let s = Shard(index: 1, count: 3)
        #expect((0..<9).filter(s.contains) == [1, 4, 7])
        #expect(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"]) == Shard(index: 3, count: 4))
        #expect(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2"]) == Shard(index: 3, count: 4))
        #expect(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "1", "BLCONVERT_SHARD_COUNT": "2"]) == Shard(index: 1, count: 2))
        #expect(throws: BLError.self) { try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "1"]) }
        #expect(try Shard.fromEnvironment([:]) == nil)
    }
}

@Suite struct EvalListTests {
    func parse(_ text: String, separator: String? = nil, filter: Int = 0, modality: Modality = .rgb) throws -> VideoList {
        try VideoList.parse(text: text, file: "list.txt", separator: separator, filterVideo: filter, modality: modality)
    }

    func failure(_ text: String, separator: String? = nil) -> BLError? {
        do { _ = try parse(text, separator: separator); return nil } catch let e as BLError { return e } catch { return nil }
    }

    @Test func listsInTheReferenceLayout() throws {
        let l = try parse("a/v1 1 37 1\r\n\nb/v2 3 50 5 7\n")
        #expect(l.entries.map(\.path) == ["a/v1", "b/v2"] && l.entries.map(\.line) == [1, 3])
        #expect(l.entries[1].labels == [5, 7] && l.entries[1].numFrames == 48 && l.multiLabel && l.hasLabels)
        let k = try parse("some dir/v 1 12 3.0\nx;1;2;0\n".replacingOccurrences(of: "some dir/v 1 12 3.0", with: "some dir/v;1;12;3.0"))
        #expect(k.separator == ";" && k.entries[0].path == "some dir/v" && k.entries[0].labels == [3])
        let test = try parse("00012 1 30\n7 1 9\n")
        #expect(!test.hasLabels && test.entries[0].videoID == "12")
        // --filter-video drops short labelled videos only; flow loses one frame at the end.
        #expect(try parse("a 1 2 0\nb 1 30 1\n", filter: 3).entries.map(\.path) == ["b"])
        #expect(try parse("a 1 2\nb 1 30\n", filter: 3).entries.count == 2)
        #expect(try parse("a 1 30 0\n", modality: .flow).entries[0].endFrame == 29)
    }

    @Test func badListsNameTheLine() throws {
        let cases: [(String, String)] = [
            ("a 1 30 0\nb 1\n", "line 2"), ("a 1 x 0\n", "end frame 'x'"), ("a one 3 0\n", "start frame 'one'"),
            ("a 1 30 2.5\n", "label '2.5'"), ("a 1 30 0\nb 1 30\n", "no label"), ("\n\n", "no video"),
            ("a 5 3 1\n", "before its start"), ("a 0 3 1\n", "numbered from 1"),
        ]
        for (text, words) in cases {
            let e = failure(text)
            #expect(e != nil && e!.description.contains(words) && e!.description.contains("list.txt"), "\(text): \(String(describing: e))")
        }
        #expect(failure("a 1 30 0\n", separator: ";")?.description.contains("line 1") == true)
        #expect(throws: BLError.self) { try parse("a 1 2 0\n", filter: 3) }
    }

    @Test func labelsBeyondTheModelAreRefused() throws {
        let list = try parse("a 1 30 3\nb 1 30 10\n")
        let e = #expect(throws: BLError.self) {
            try Evaluator(list: list, settings: EvalSettings(imageTemplate: try ImageTemplate("{:05d}.jpg")),
                          model: EvalFixtures.fakeModel(frames: 8, channels: 3, classes: 10))
        }
        #expect(e?.description.contains("label 10 of video b (list line 2)") == true)
    }
}

/// The command end to end (in process unless the process itself matters).
@Suite struct EvalCommandTests {
    static let list = EvalFixtures.mini + "/val_list.txt"
    static let root = EvalFixtures.mini + "/frames"

    func eval(_ extra: [String], list: String = Self.list, root: String = Self.root) -> CLIResult {
        CLI.run(["eval", CLIFixtures.miniCheckpoint, "--frames", "8", "--list", list, "--root", root, "--input-shape", "112"] + extra)
    }

    /// A list of the bundled videos `times` over (in a temporary folder).
    func longList(_ dir: String, times: Int) throws -> String {
        let lines = try String(contentsOfFile: Self.list, encoding: .utf8)
        let path = dir + "/long.txt"
        try String(repeating: lines, count: times).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func summaryJSONDetailsAndPredictions() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = eval(["--num-crops", "3", "--json", "--details", dir + "/d.npy", "--predictions", dir + "/p.csv"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("Val@112(128) (# crops = 3, # clips = 1): \tTop@1: "), "\(r.stderr)")
        let json = try #require(r.json)
        let videos = try #require(json["videos"] as? [[String: Any]])
        #expect(videos.count == 4 && videos.map { $0["path"] as? String } == ["v002", "v003", "v004", "v006"])
        #expect(videos[0]["label"] as? Int == 5 && (videos[0]["logits"] as? [Double])?.count == 10)
        #expect((json["top1"] as? Double).map { $0 >= 0 && $0 <= 100 } == true)
        // The details file: [videos, classes] float64 of the float32 softmax outputs.
        let npy = try Data(contentsOf: URL(fileURLWithPath: dir + "/d.npy"))
        let header = String(decoding: npy.prefix(128), as: UTF8.self)
        #expect(header.contains("'descr': '<f8'") && header.contains("'shape': (4, 10)"))
        #expect(npy.count == 128 + 4 * 10 * 8)
        let probs = try #require(videos[1]["probs"] as? [Double])
        let row = (0..<10).map { i in npy.withUnsafeBytes { $0.load(fromByteOffset: 128 + (10 + i) * 8, as: Double.self) } }
        #expect(row == probs.map { Double(Float($0)) })
        // Predictions: video_id;p1;...;p5.
        let csv = try String(contentsOfFile: dir + "/p.csv", encoding: .utf8).split(separator: "\n")
        let top5 = try #require(videos[0]["top5"] as? [Int])
        #expect(csv.count == 4 && csv[0] == "v002;" + top5.map(String.init).joined(separator: ";"))
        // A test list (no labels): predictions only.
        let test = dir + "/test.txt"
        try "v003 1 6\nv006 1 12\n".write(toFile: test, atomically: true, encoding: .utf8)
        let t = eval(["--predictions", dir + "/t.csv"], list: test)
        #expect(t.status == 0 && t.stdout.contains("Predict 2 videos."), "\(t.stdout) \(t.stderr)")
        #expect(try String(contentsOfFile: dir + "/t.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ";").count } == [6, 6])
    }

    /// The numbers do not depend on how many workers prepare the videos, nor on views per run.
    @Test func resultsDoNotDependOnWorkers() throws {
        let base = eval(["--num-clips", "2", "--json", "--workers", "0"])
        #expect(base.status == 0, "\(base.stderr)")
        for extra in [["--workers", "1"], ["--workers", "3"], ["--workers", "2", "--views-per-run", "1"]] {
            let r = eval(["--num-clips", "2", "--json"] + extra)
            #expect(r.status == 0 && r.stdout == base.stdout, "\(extra)")
        }
    }

    /// The prefetching pipeline alone (a stand-in model, real decoding): the same results with
    /// any number of workers, errors at the same videos, and an early stop.
    @Test func prefetchingIsDeterministic() throws {
        let list = try VideoList.parse(text: String(repeating: "v003 1 6 2\nv006 1 12 5\nmissing 1 9 1\nv004 1 23 5\n", count: 3),
                                       file: "list.txt")
        var s = EvalSettings(imageTemplate: try ImageTemplate("{:05d}.jpg"))
        s.inputShape = 48
        s.crops = 3
        s.clips = 2
        var outcomes: [[String]] = []
        for workers in [0, 1, 2, 5] {
            let e = try Evaluator(list: list, settings: s, model: EvalFixtures.fakeModel(frames: 8, channels: 3), root: Self.root,
                                  options: .init(workers: workers, onError: .skip))
            outcomes.append(try e.evaluate().map { r in r.logits.map { "\($0)" } ?? "error: \(r.error ?? "")" })
        }
        #expect(outcomes.count == 4 && outcomes.allSatisfy { $0 == outcomes[0] })
        #expect(outcomes[0].count == 12 && outcomes[0].filter { $0.hasPrefix("error:") }.count == 3)
        let e = try Evaluator(list: list, settings: s, model: EvalFixtures.fakeModel(frames: 8, channels: 3), root: Self.root,
                              options: .init(workers: 3, onError: .skip))
        var seen = 0
        let complete = try e.run(onResult: { _ in seen += 1 }, shouldStop: { seen >= 5 })
        #expect(!complete && seen == 5)
    }

    @Test func badVideosAreClearErrorsOrSkipped() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        // v003 complete, v006 with a missing frame, v004 with a corrupt frame, v002 with a frame of another size.
        for v in ["v003", "v004", "v006"] { try fm.copyItem(atPath: Self.root + "/" + v, toPath: dir + "/" + v) }
        try fm.removeItem(atPath: dir + "/v006/00007.jpg")
        try Data("not a picture".utf8).write(to: URL(fileURLWithPath: dir + "/v004/00011.jpg"))
        try fm.createDirectory(atPath: dir + "/v002", withIntermediateDirectories: true)
        for n in 1...6 {
            try fm.copyItem(atPath: Self.root + "/" + (n == 4 ? "v004/00001.jpg" : "v003/0000\(n).jpg"), toPath: dir + "/v002/0000\(n).jpg")
        }
        let list = dir + "/list.txt"
        try "v003 1 6 2\nv006 1 12 5\nv004 1 23 5\nv002 1 6 1\n".write(toFile: list, atomically: true, encoding: .utf8)
        let stop = eval([], list: list, root: dir)
        #expect(stop.status == 2 && stop.stderr.contains("v006/00007.jpg") && stop.stderr.contains("video v006 (list line 2)"), "\(stop.stderr)")
        let skip = eval(["--on-error", "skip", "--json", "--details", dir + "/d.npy"], list: list, root: dir)
        #expect(skip.status == 2, "\(skip.stderr)")
        let videos = try #require(skip.json?["videos"] as? [[String: Any]])
        let errors = videos.map { $0["error"] as? String }
        #expect(errors[0] == nil && errors[1]?.contains("00007.jpg") == true)
        #expect(errors[2]?.contains("00011.jpg") == true && errors[2]?.contains("list line 3") == true)
        #expect(errors[3]?.contains("all frames of a video must have one size") == true, "\(String(describing: errors[3]))")
        #expect(skip.json?["videos_failed"] as? Int == 3)
        // Failed videos are misses: top-1 is at most 25% with 1 of 4 evaluated.
        #expect((skip.json?["top1"] as? Double ?? 100) <= 25)
        #expect(skip.stderr.contains("3 of 4 videos failed (counted as misses)"))
        let empty = dir + "/empty.txt"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let e = eval([], list: empty, root: dir)
        #expect(e.status == 2 && e.stderr.contains("names no video"))
        let short = dir + "/short.txt"
        try "v003 1\n".write(toFile: short, atomically: true, encoding: .utf8)
        #expect(eval([], list: short, root: dir).stderr.contains("line 1"))
    }

    /// A results file cut as a kill leaves it, resumed: the same outputs as one run; another
    /// evaluation's file is refused.
    @Test func resumeContinuesAResultsFile() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let whole = eval(["--json", "--results", dir + "/all.jsonl"])
        #expect(whole.status == 0, "\(whole.stderr)")
        let lines = try String(contentsOfFile: dir + "/all.jsonl", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 6 && lines[5].isEmpty)  // header, 4 videos, final newline
        // Header and the first video, then half a line.
        let cut = lines[0...1].joined(separator: "\n") + "\n" + lines[2].prefix(40)
        try cut.write(toFile: dir + "/cut.jsonl", atomically: true, encoding: .utf8)
        let resumed = eval(["--json", "--resume", dir + "/cut.jsonl"])
        #expect(resumed.status == 0 && resumed.stdout == whole.stdout, "\(resumed.stderr)")
        #expect(try String(contentsOfFile: dir + "/cut.jsonl", encoding: .utf8) == lines.joined(separator: "\n"))
        let other = eval(["--json", "--resume", dir + "/cut.jsonl", "--num-crops", "3"])
        #expect(other.status == 2 && other.stderr.contains("another evaluation"), "\(other.stderr)")
        let exists = eval(["--results", dir + "/all.jsonl"])
        #expect(exists.status == 2 && exists.stderr.contains("--resume"))
    }

    /// N shards as separate processes, merged: byte for byte the unsharded run.
    @Test func shardsMergeIntoTheUnshardedRun() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = try longList(dir, times: 2)
        let args = ["eval", CLIFixtures.miniCheckpoint, "--frames", "8", "--list", list, "--root", Self.root,
                    "--input-shape", "96", "--num-clips", "2", "--json"]
        let whole = try CLI.spawn(args + ["--details", dir + "/whole.npy"])
        #expect(whole.status == 0, "\(whole.stderr)")
        var parts: [String] = []
        for k in 0..<3 {
            let r = try CLI.spawn(args + ["--shard", "\(k)/3", "--results", dir + "/part\(k).jsonl"])
            #expect(r.status == 0, "\(r.stderr)")
            try r.stdout.write(toFile: dir + "/part\(k).json", atomically: true, encoding: .utf8)
            parts.append(dir + "/part\(k).json")
        }
        let merged = try CLI.spawn(["eval-merge"] + parts + ["--json", "--details", dir + "/merged.npy"])
        #expect(merged.status == 0 && merged.stdout == whole.stdout, "\(merged.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/merged.npy")) == Data(contentsOf: URL(fileURLWithPath: dir + "/whole.npy")))
        // The results files merge the same way; a missing shard is named.
        let jsonl = CLI.run(["eval-merge", "--json"] + (0..<3).map { dir + "/part\($0).jsonl" })
        #expect(jsonl.status == 0 && jsonl.stdout == whole.stdout, "\(jsonl.stderr)")
        let missing = CLI.run(["eval-merge", parts[0], parts[2]])
        #expect(missing.status == 2 && missing.stderr.contains("1/3"), "\(missing.stderr)")
    }

    /// SIGINT: the run stops after the video in hand, keeps what is done, exits 130; --resume finishes it.
    @Test func interruptKeepsTheFinishedVideos() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = try longList(dir, times: 15)
        let binary = try #require(CLI.binary)
        let results = dir + "/r.jsonl"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["eval", CLIFixtures.miniCheckpoint, "--frames", "8", "--list", list, "--root", Self.root,
                       "--results", results, "--workers", "1", "--threads", "1"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let start = Date()
        while Date().timeIntervalSince(start) < 300 {
            let text = (try? String(contentsOfFile: results, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= 3 { break }
            usleep(20_000)
        }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 130, "\(stderr)")
        #expect(stderr.contains("interrupted") && stderr.contains("--resume"), "\(stderr)")
        let done = try String(contentsOfFile: results, encoding: .utf8).split(separator: "\n").count - 1
        #expect(done >= 2 && done < 60, "\(done)")
        let resumed = CLI.run(["eval", CLIFixtures.miniCheckpoint, "--frames", "8", "--list", list, "--root", Self.root,
                               "--resume", results, "--json"])
        #expect(resumed.status == 0 && (resumed.json?["videos"] as? [Any])?.count == 60, "\(resumed.stderr)")
    }

    @Test func helpTeachesWithExamples() {
        let commands: [(String, ParsableCommand.Type)] = [("eval", Eval.self), ("eval-merge", EvalMerge.self)]
        for (name, type) in commands {
            let help = BLConvertCommand.helpMessage(for: type)
            #expect(help.contains("Examples:") && help.contains("  blconvert \(name) "), "\(name)")
            let discussion = help.components(separatedBy: "USAGE:")[0]
            #expect(discussion.split(separator: "\n").allSatisfy { $0.count <= 80 }, "\(name)")
        }
    }
}
