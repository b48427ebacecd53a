import Foundation
import Testing
import BLTestSupport
import BLConvert
import BLCheckpoint
import BLCore
import BLSafetensors

/// The public API as a user of the `BLConvert` library product calls it: loading, predicting,
/// importing, verifying, and errors that carry their data.
@Suite struct LibraryTests {
    static let mini = TestData.fixture("mini-a2b4-f4x2")
    static var clips: [URL] { (0..<3).map { URL(fileURLWithPath: mini + "/clip\($0).safetensors") } }

    static func url(_ path: String) -> URL { URL(fileURLWithPath: path) }

    @Test func importLoadPredictAndVerify() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let package = Self.url(dir + "/mini.blc")
        var stages: [Converter.ImportStage] = []
        let summary = try Converter.importCheckpoint(Self.url(Self.mini + "/model.pth.tar"), to: package, frames: 8) { stages.append($0) }
        #expect(stages == [.reading, .building, .writing])
        #expect(summary.sourceFormat == "pytorch-legacy" && summary.optimized && summary.precision == .float32)
        #expect(summary.configuration.frames == 8 && summary.configuration.classes == 10 && summary.configuration.alpha == 2)
        #expect(summary.configuration.blocks == [2, 2, 2, 1] && summary.configuration.head == .dropoutNewFC)
        #expect(summary.sourceSHA256.count == 64)

        let model = try BLVNetModel(package: package, options: RuntimeOptions(threads: 2))
        #expect(model.configuration == summary.configuration)
        #expect(model.origin == .package(sourceFile: "model.pth.tar", sourceSHA256: summary.sourceSHA256))

        let report = try Verifier.verify(model: model, clips: Self.clips)
        #expect(report.passed && report.failures.isEmpty && report.clips.count == 3)
        #expect(report.worstRelativeError < 1e-5 && report.worstRelativeError > 0)
        #expect(report.clips.allSatisfy { $0.samples.allSatisfy { $0.top5Equal } })

        // logits and predictions agree with the reference clip's own float64 logits.
        let clip = try Clip(contentsOf: Self.clips[0])
        #expect(clip.shape == [2, 24, 64, 64])
        let logits = try model.logits(for: clip)
        let reference = try SafetensorsFile.load(path: Self.clips[0].path)
        let ref = try #require(reference.tensor("logits_f64")).doubles()
        #expect(logits.count == 2 && logits.classes == 10)
        let scale = ref.map(abs).max() ?? 1
        let worst = zip(logits.values, ref).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(worst / scale < 1e-5)
        let predictions = try model.predict(clip: clip, top: 3, labels: (0..<10).map { "class \($0)" })
        #expect(predictions.count == 2)
        for (s, p) in predictions.enumerated() {
            #expect(p.classes.map(\.index) == logits.top(3, sample: s))
            #expect(p.classes[0].label == "class \(p.classes[0].index)")
            #expect(abs(p.probabilities.reduce(0, +) - 1) < 1e-12)
        }

        // A checkpoint imported in memory computes the same.
        let inMemory = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"), frames: 8)
        #expect(inMemory.origin == .checkpoint(format: "pytorch-legacy"))
        #expect(try inMemory.logits(for: clip).values == logits.values)
        let cost = try model.cost(height: 64, width: 64)
        #expect(cost.multiplyAccumulates > 0 && cost.parameters > 0 && cost.activationBytes > 0)
    }

    @Test func errorsCarryTheirData() throws {
        // No T anywhere: the error asks for it.
        #expect {
            _ = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"))
        } throws: { e in
            guard let e = e as? BLConvertError else { return false }
            return e.kind == .invalidArgument && e.message.contains("--frames") && e.file?.hasSuffix("model.pth.tar") == true
        }
        #expect(throws: BLConvertError.self) { _ = try FrameCount.resolve(explicit: nil, arch: nil, path: "/runs-f8x2/model.pth") }
        #expect(try FrameCount.resolve(explicit: nil, arch: "st2stv2-bLVNet-TAM-50-a2-b4-f4x2-cosine", path: "x-f8x2.pth") == 8)
        #expect(try FrameCount.resolve(explicit: nil, arch: nil, path: "/runs/x-a2-b4-f8x2.pth") == 16)

        // A refused pickle global, by name; nothing ran.
        #expect {
            _ = try BLVNetModel(checkpoint: Self.url(TestData.fixture("parsers/evil_os_system_zip.pth")), frames: 8)
        } throws: { e in
            guard let e = e as? BLConvertError else { return false }
            return e.kind == .refused && e.detail == .refusedGlobal(module: "posix", name: "system")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/blconvert-evil-marker"))

        // Strict loading: the missing, unexpected and mis-shaped tensors as lists.
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let extracted = dir + "/weights.safetensors"
        var tensors = try Checkpoint.open(path: Self.mini + "/model.pth.tar").stateDict().tensors
        tensors.removeAll { $0.name == "new_fc.bias" }
        let reshaped = "baseline_model.layer1.big.0.conv2.weight"
        let i = try #require(tensors.firstIndex { $0.name == reshaped })
        let shape = tensors[i].tensor.shape
        tensors[i].tensor = try Tensor.fromFloats([1], shape: [1, 1, 1, 1])
        tensors.append((name: "extra.weight", tensor: try Tensor.fromFloats([1], shape: [1])))
        try SafetensorsWriter.write(tensors, to: extracted)
        #expect {
            _ = try BLVNetModel(checkpoint: Self.url(extracted), frames: 8)
        } throws: { e in
            guard let e = e as? BLConvertError, case .weights(let m)? = e.detail else { return false }
            return e.kind == .mismatch && m.missing.map(\.name) == ["new_fc.bias"] && m.unexpected == ["extra.weight"]
                && m.misshaped == [.init(name: reshaped, expected: shape, found: [1, 1, 1, 1])]
        }

        // A non-finite input element, by index.
        let model = try BLVNetModel(package: try Self.package(in: dir))
        var values = [Float](repeating: 0, count: 24 * 32 * 32)
        values[5 * 32 * 32 + 7] = .nan
        let bad = try Clip(shape: [1, 24, 32, 32], values: values)
        #expect {
            _ = try model.logits(for: bad)
        } throws: { e in
            guard let e = e as? BLConvertError, case .nonFiniteInput(let index, let value)? = e.detail else { return false }
            return e.kind == .numeric && index == [0, 5, 0, 7] && value.isNaN
        }
        // A clip of the wrong shape is refused before it reaches the model.
        #expect(throws: BLConvertError.self) { _ = try Clip(shape: [24, 32, 32], values: [Float](repeating: 0, count: 24 * 32 * 32)) }
        #expect(throws: BLConvertError.self) { _ = try Clip(shape: [1, 24, 32, 32], values: [0]) }
        #expect(throws: BLConvertError.self) { _ = try model.logits(for: try Clip(shape: [1, 12, 8, 8], values: [Float](repeating: 0, count: 768))) }
        // A clip that cannot be checked is reported beside the others.
        let report = try Verifier.verify(model: model, clips: [Self.clips[1], Self.url(dir + "/absent.safetensors")])
        #expect(!report.passed && report.clips.count == 1 && report.clips[0].passed)
        #expect(report.failures.count == 1 && report.failures[0].error.kind == .io)
        #expect(throws: BLConvertError.self) { _ = try Verifier.verify(model: model, clips: [], tolerance: Tolerance(relative: -1)) }
    }

    /// Frames decoded by the library, sampled and preprocessed as the reference does, give the
    /// reference pipeline's tensor bit for bit (whole video in memory, or a folder).
    @Test(.enabled(if: TestData.hasShared)) func framesAndFoldersMatchTheReferencePreprocessing() throws {
        let root = TestData.shared("frames-mini")
        let reference = try SafetensorsFile.load(path: root + "/preprocessed.safetensors")
        let expected = try #require(reference.tensor("input_png_scale224")).floats()
        let files = try FileManager.default.contentsOfDirectory(atPath: root + "/frames_png").filter { $0.hasSuffix(".png") }.sorted()
        #expect(files.count == 37)
        let frames = try files.map { try RGBImage(contentsOf: Self.url(root + "/frames_png/" + $0)) }
        let p = Preprocessing(frames: 8, scale: 224)
        #expect(p.sampleIndices(frameCount: 37) == [3, 7, 12, 17, 21, 26, 31, 35])
        let (clip, numbers) = try p.clip(fromVideoFrames: frames)
        #expect(numbers == [3, 7, 12, 17, 21, 26, 31, 35])
        #expect(clip.values == expected)
        let (folderClip, _) = try p.clip(fromFrameFolder: Self.url(root + "/frames_png"))
        #expect(folderClip.values == expected)
        let model = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"), frames: 8)
        let a = try model.predict(frames: frames, top: 5), b = try model.predict(frameFolder: Self.url(root + "/frames_png"), top: 5)
        #expect(a == b && a.frameNumbers == numbers)
        #expect(throws: BLConvertError.self) { _ = try model.predict(frames: frames, preprocessing: Preprocessing(frames: 6)) }
    }

    /// A video file predicts as its extracted JPEG folder does (same sampled frames, same top-1);
    /// the logits differ only by the JPEG step of the extraction (quality 1 is not lossless).
    @Test(.enabled(if: TestData.hasShared)) func videosPredictAsTheirExtractedFolders() throws {
        let root = TestData.shared("eval-mini")
        let model = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"), frames: 8)
        var worst = 0.0
        let names = try FileManager.default.contentsOfDirectory(atPath: root + "/videos")
            .filter { $0.hasSuffix(".webm") || $0.hasSuffix(".mp4") }.sorted()
        #expect(names.count == 6)
        for name in names {
            let video = root + "/videos/" + name
            let folder = root + "/frames/" + String(name.prefix(4))
            let p = Preprocessing(frames: 8, scale: 256)
            let fromVideo = try p.clip(fromVideo: Self.url(video)), fromFolder = try p.clip(fromFrameFolder: Self.url(folder))
            #expect(fromVideo.frameNumbers == fromFolder.frameNumbers, "\(name)")
            let a = try model.logits(for: fromVideo.clip), b = try model.logits(for: fromFolder.clip)
            #expect(a.top(1, sample: 0) == b.top(1, sample: 0), "\(name): top-1 differs between the video and its JPEG folder")
            let scale = b.values.map { abs(Double($0)) }.max() ?? 1
            worst = max(worst, zip(a.values, b.values).map { abs(Double($0) - Double($1)) }.max()! / scale)
        }
        print("VIDEO vs extracted JPEG folders: largest relative logits difference \(worst)")
        #expect(worst < 0.2)
    }

    /// `evaluate` through the public API: the bundled eval-mini subset in the reference's 3-crop,
    /// 2-clip setting gives the reference's per-video logits (float64) and accuracies.
    @Test func evaluateMatchesTheReference() throws {
        let root = TestData.fixture("eval-mini")
        let reference = try JSONParser.parse(Array(try Data(contentsOf: Self.url(root + "/reference.json"))))
        let runs = try #require(reference["runs"]?.arrayValue)
        let run = try #require(runs.first { $0["num_crops"]?.intValue == 3 && $0["input_shape"]?.intValue == 224 })
        let model = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"), frames: 8)
        let list = try TestData.temporaryDirectory() + "/list.txt"
        let lines = try String(contentsOfFile: root + "/val_list.txt", encoding: .utf8).split(separator: "\n")
        let names = try #require(reference["videos"]?.arrayValue).compactMap(\.stringValue)
        // The bundled subset holds the videos whose frames are all present.
        let bundled = lines.filter { FileManager.default.fileExists(atPath: root + "/frames/" + $0.split(separator: " ")[0]) }
        try bundled.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let report = try model.evaluate(list: Self.url(list), root: Self.url(root + "/frames"),
                                        settings: EvaluationSettings(crops: 3, clips: 2), options: EvaluationOptions(workers: 2))
        #expect(report.videos.count == bundled.count && report.videos.count >= 3)
        let perVideo = try #require(run["per_video"]?.arrayValue)
        for v in report.videos {
            let i = try #require(names.firstIndex(of: v.path))
            let ref = try #require(perVideo[i]["logits_f64"]?.arrayValue).compactMap(\.doubleValue)
            let got = try #require(v.logits)
            let scale = ref.map(abs).max() ?? 1
            #expect(zip(got, ref).map { abs($0 - $1) }.max()! / scale < 1e-5, "\(v.path)")
            #expect(v.top5 == perVideo[i]["top5"]?.arrayValue?.compactMap(\.intValue), "\(v.path)")
        }
        #expect(report.summaryLine.hasPrefix("Val@224(256) (# crops = 3, # clips = 2):"))
    }

    /// `eval --videos`: the videos themselves give the same top-1 per video as their extracted
    /// JPEG folders (the logits differ by the JPEG step only).
    @Test(.enabled(if: TestData.hasShared)) func evaluatingVideosMatchesTheirFolders() throws {
        let root = TestData.shared("eval-mini")
        let model = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"), frames: 8)
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let videos = try FileManager.default.contentsOfDirectory(atPath: root + "/videos")
            .filter { $0.hasSuffix(".webm") || $0.hasSuffix(".mp4") }.sorted()
        let lines = try String(contentsOfFile: root + "/val_list.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(videos.count == 6 && lines.count == 6)
        let videoLines = lines.map { line -> String in
            let name = String(line.split(separator: " ")[0])
            return (videos.first { $0.hasPrefix(name + ".") } ?? name) + line.dropFirst(name.count)
        }
        try lines.joined(separator: "\n").write(toFile: dir + "/folders.txt", atomically: true, encoding: .utf8)
        try videoLines.joined(separator: "\n").write(toFile: dir + "/videos.txt", atomically: true, encoding: .utf8)
        let settings = EvaluationSettings(crops: 3, clips: 2)
        let folders = try model.evaluate(list: Self.url(dir + "/folders.txt"), root: Self.url(root + "/frames"), settings: settings)
        let direct = try model.evaluate(list: Self.url(dir + "/videos.txt"), root: Self.url(root + "/videos"), settings: settings,
                                        options: EvaluationOptions(videoFiles: true))
        var worst = 0.0
        for (a, b) in zip(direct.videos, folders.videos) {
            #expect(a.top5?.first == b.top5?.first, "\(a.path): top-1 differs from its JPEG folder")
            let x = try #require(a.logits), y = try #require(b.logits)
            worst = max(worst, zip(x, y).map { abs($0 - $1) }.max()! / (y.map(abs).max() ?? 1))
        }
        #expect(direct.top1 == folders.top1)
        print("EVAL --videos vs extracted JPEG folders (3 crops x 2 clips): largest relative logits difference \(worst)")
    }

    /// `eval --videos --on-error skip`: a file that is no video becomes an error record naming it,
    /// the other videos are evaluated; under `.stop` the run ends with that error.
    @Test func unreadableVideosAreRecordedOrStopTheRun() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let videos = TestData.fixture("video")
        try "not a video".write(toFile: dir + "/text.mp4", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: videos + "/odd.webm", toPath: dir + "/odd.webm")
        try "odd.webm 1 8 3\ntext.mp4 1 8 1\n".write(toFile: dir + "/list.txt", atomically: true, encoding: .utf8)
        let model = try BLVNetModel(checkpoint: Self.url(Self.mini + "/model.pth.tar"), frames: 8)
        let settings = EvaluationSettings(inputShape: 64)
        let report = try model.evaluate(list: Self.url(dir + "/list.txt"), root: Self.url(dir), settings: settings,
                                        options: EvaluationOptions(onError: .skip, videoFiles: true))
        #expect(report.videos.count == 2)
        #expect(report.videos[0].error == nil && report.videos[0].top5?.count == 5)
        #expect(report.videos[1].logits == nil && report.videos[1].error?.contains("text.mp4") == true, "\(report.videos[1])")
        #expect(report.top1 != nil)
        #expect {
            _ = try model.evaluate(list: Self.url(dir + "/list.txt"), root: Self.url(dir), settings: settings,
                                   options: EvaluationOptions(videoFiles: true))
        } throws: { e in (e as? BLConvertError)?.description.contains("text.mp4") == true }
        // A list claiming more frames than the video has names the frame it could not reach.
        try "odd.webm 1 500 3\n".write(toFile: dir + "/long.txt", atomically: true, encoding: .utf8)
        #expect(throws: BLConvertError.self) {
            _ = try model.evaluate(list: Self.url(dir + "/long.txt"), root: Self.url(dir), settings: settings,
                                   options: EvaluationOptions(videoFiles: true))
        }
    }

    @Test func picturesAndLabels() throws {
        #expect(throws: BLConvertError.self) { _ = try RGBImage(width: 2, height: 2, pixels: [0, 0, 0]) }
        let image = try RGBImage(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6])
        #expect(image.width == 2 && image.height == 1 && image.pixels == [1, 2, 3, 4, 5, 6])
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a\r\n b \r\nc\r\n\r\n".write(toFile: dir + "/labels.txt", atomically: true, encoding: .utf8)
        #expect(try ClassLabels.read(Self.url(dir + "/labels.txt"), classes: 3) == ["a", "b", "c"])
        #expect(throws: BLConvertError.self) { _ = try ClassLabels.read(Self.url(dir + "/labels.txt"), classes: 4) }
    }

    static func package(in dir: String) throws -> URL {
        let url = Self.url(dir + "/p.blc")
        try Converter.importCheckpoint(Self.url(mini + "/model.pth.tar"), to: url, frames: 8, overwrite: true)
        return url
    }
}
