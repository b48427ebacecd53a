import Foundation
import Testing
import BLTestSupport
import CFFmpeg
import BLCore
import BLMedia
@testable import BLVideo
@testable import BLCommands

// Video input against what the reference's ffmpeg 5.1 writes: the eval-mini videos (shared
// fixtures) with their reference JPEG folders and per-frame RGB24 hashes, and the small videos in
// Fixtures/video (rotations, odd sizes, irregular timestamps, full range, 10-bit, ...) with the
// hashes Fixtures/video/make.sh recorded from the ffmpeg program.

/// The eval-mini videos (VP9 WebM and H.264 MP4, one portrait) and what the reference wrote.
enum EvalMini {
    static let root: String? = TestData.sharedRoot.map { $0 + "/eval-mini" }
    static let names = ["v001", "v002", "v003", "v004", "v005", "v006"]

    static func video(_ name: String) -> String {
        let dir = (root ?? "") + "/videos/"
        return FileManager.default.fileExists(atPath: dir + name + ".webm") ? dir + name + ".webm" : dir + name + ".mp4"
    }

    static var videos: [String] { names.map(video) }

    /// `decoded_rgb24` of reference.json: width, height, per-frame sha256.
    static func decoded() throws -> [String: VideoFixtures.Expected] {
        let root = try #require(root)
        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: root + "/reference.json"))))
        var out: [String: VideoFixtures.Expected] = [:]
        for (name, v) in try #require(json["decoded_rgb24"]?.objectValue) {
            out[name] = VideoFixtures.Expected(width: try #require(v["width"]?.intValue), height: try #require(v["height"]?.intValue),
                                               rgb24: try #require(v["sha256"]?.arrayValue).compactMap(\.stringValue), jpeg: [])
        }
        return out
    }
}

/// Fixtures/video: the videos and expected.json.
enum VideoFixtures {
    struct Expected {
        var width: Int
        var height: Int
        var rgb24: [String]
        var jpeg: [String]
    }

    static let dir = TestData.fixture("video")

    static func path(_ name: String) -> String { dir + "/" + name }

    static func expected() throws -> [(name: String, expected: Expected)] {
        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json"))))
        return try #require(json["videos"]?.objectValue).map { name, v in
            (name, Expected(width: try #require(v["width"]?.intValue), height: try #require(v["height"]?.intValue),
                            rgb24: try #require(v["rgb24_sha256"]?.arrayValue).compactMap(\.stringValue),
                            jpeg: try #require(v["jpeg_sha256"]?.arrayValue).compactMap(\.stringValue)))
        }
    }

    /// An AVI file with an MJPEG video stream and no frames, written by libavformat's muxer.
    static func writeZeroFrameAVI(_ path: String) throws {
        var oc: UnsafeMutablePointer<AVFormatContext>? = nil
        try #require(avformat_alloc_output_context2(&oc, nil, "avi", path) >= 0)
        let ctx = try #require(oc)
        defer { avformat_free_context(ctx) }
        let st = try #require(avformat_new_stream(ctx, nil))
        st.pointee.codecpar.pointee.codec_type = AVMEDIA_TYPE_VIDEO
        st.pointee.codecpar.pointee.codec_id = AV_CODEC_ID_MJPEG
        st.pointee.codecpar.pointee.width = 64
        st.pointee.codecpar.pointee.height = 48
        st.pointee.time_base = AVRational(num: 1, den: 12)
        try #require(avio_open(&ctx.pointee.pb, path, AVIO_FLAG_WRITE) >= 0)
        defer { avio_closep(&ctx.pointee.pb) }
        try #require(avformat_write_header(ctx, nil) >= 0)
        try #require(av_write_trailer(ctx) >= 0)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    var h = SHA256()
    h.update(bytes)
    return SHA256.hexString(h.finalize())
}

/// The RGB24 frames of a video, hashed.
func decodedHashes(_ path: String, options: VideoOptions = VideoOptions()) throws -> (hashes: [String], info: VideoInfo) {
    var hashes: [String] = []
    let info = try VideoFrames.forEachFrame(path, options: options) { i, image in
        #expect(i == hashes.count + 1)
        hashes.append(sha256Hex(image.rgb))
    }
    return (hashes, info)
}

func differing(_ a: [String], _ b: [String]) -> [Int] {
    zip(a, b).enumerated().filter { $0.element.0 != $0.element.1 }.map { $0.offset + 1 }
}

@Suite struct VideoDecodingTests {
    /// Every frame of every eval-mini video, bit for bit what
    /// `ffmpeg -i V -vf scale=... -f rawvideo -pix_fmt rgb24 -` wrote.
    @Test(.enabled(if: TestData.hasShared)) func everyEvalMiniFrameMatchesItsReferenceHash() throws {
        let reference = try EvalMini.decoded()
        #expect(reference.count == EvalMini.names.count)
        for name in EvalMini.names {
            let ref = try #require(reference[name])
            let (hashes, info) = try decodedHashes(EvalMini.video(name))
            #expect(hashes.count == ref.rgb24.count, "\(name)")
            #expect(differing(hashes, ref.rgb24).isEmpty, "\(name): frames \(differing(hashes, ref.rgb24)) differ")
            #expect(info.frames == ref.rgb24.count && info.width == ref.width && info.height == ref.height, "\(name)")
        }
    }

    /// The bundled edge cases: every RGB24 frame and every JPEG file as ffmpeg wrote them.
    @Test func everyFixtureFrameAndJPEGMatchesFFmpeg() throws {
        let all = try VideoFixtures.expected()
        #expect(all.count == 14)
        for (name, ref) in all {
            let (hashes, info) = try decodedHashes(VideoFixtures.path(name))
            #expect(hashes.count == ref.rgb24.count, "\(name): \(hashes.count) frames, ffmpeg \(ref.rgb24.count)")
            #expect(differing(hashes, ref.rgb24).isEmpty, "\(name): RGB24 frames \(differing(hashes, ref.rgb24)) differ")
            #expect(info.width == ref.width && info.height == ref.height, "\(name): \(info.width)x\(info.height)")
            var jpegs: [String] = []
            try ReferenceExtraction.extract(VideoFixtures.path(name), format: .jpeg) { i, bytes in
                #expect(i == jpegs.count + 1)
                jpegs.append(sha256Hex(bytes))
            }
            #expect(jpegs.count == ref.jpeg.count, "\(name)")
            #expect(differing(jpegs, ref.jpeg).isEmpty, "\(name): JPEG files \(differing(jpegs, ref.jpeg)) differ")
        }
    }

    /// What the fixtures exercise, as the decoder reports it.
    @Test func fixturesCoverRotationTimingAndFormats() throws {
        func info(_ name: String) throws -> VideoInfo { try decodedHashes(VideoFixtures.path(name)).info }
        let rot90 = try info("rot90.mp4"), rot180 = try info("rot180.mp4"), rot270 = try info("rot270.mp4")
        #expect(rot90.rotation.contains("90") && rot270.rotation.contains("90") && rot90.rotation != rot270.rotation)
        #expect(rot180.rotation == "180 degrees")
        // The script chooses scale=-1:256 from the stored 96x64; after the rotation that leaves
        // a 171x256 frame, as the reference extraction gives.
        #expect((rot90.width, rot90.height, rot90.codedWidth, rot90.codedHeight) == (171, 256, 96, 64))
        let vfr = try info("vfr.mp4"), drop = try info("vfr-drop.webm"), late = try info("late.mkv")
        #expect(vfr.frames > vfr.decodedFrames, "gaps are filled with repeated frames")
        #expect(drop.frames < drop.decodedFrames, "frames closer than the output rate are dropped")
        #expect(late.syncMode == "cfr" && late.frames == late.decodedFrames + 6, "0.5 s at 12 fps padded with the first frame")
        #expect(vfr.syncMode == "vscfr")
        #expect(try info("mjpeg.avi").codec == "mjpeg")
    }

    /// Decoder threads change nothing.
    @Test func decoderThreadsGiveTheSameFrames() throws {
        var options = VideoOptions()
        options.threads = 3
        for name in ["h264.mkv", "odd.webm", "vfr.mp4"] {
            let one = try decodedHashes(VideoFixtures.path(name)).hashes
            let three = try decodedHashes(VideoFixtures.path(name), options: options).hashes
            #expect(one == three, "\(name)")
        }
    }

    /// The reference JPEGs decoded (as `run` decodes a frame folder) are the RGB24 frames up to
    /// JPEG loss: how far apart they are.
    @Test(.enabled(if: TestData.hasShared)) func referenceJPEGsAreTheDecodedFramesUpToJPEGLoss() throws {
        let root = try #require(EvalMini.root)
        var worst = 0, total = 0.0, count = 0
        for name in EvalMini.names {
            try VideoFrames.forEachFrame(EvalMini.video(name)) { i, image in
                let digits = String(i)
                let file = root + "/frames/\(name)/" + String(repeating: "0", count: 5 - digits.count) + digits + ".jpg"
                let jpeg = try ImageDecoder.decode(path: file)
                #expect(jpeg.width == image.width && jpeg.height == image.height)
                for (a, b) in zip(jpeg.rgb, image.rgb) {
                    let d = abs(Int(a) - Int(b))
                    worst = max(worst, d)
                    total += Double(d)
                }
                count += image.rgb.count
            }
        }
        let mean = total / Double(max(count, 1))
        FileHandle.standardError.write(Data("JPEG vs RGB24 frames: max |difference| \(worst), mean \(mean)\n".utf8))
        // Synthetic pictures with sharp colour edges: the JPEGs keep chroma at half resolution
        // (yuvj420p) and libjpeg upsamples it its own way, so single pixels at edges differ a lot.
        #expect(worst <= 160 && mean < 5)
    }
}

@Suite struct VideoSamplingTests {
    /// The packet-based count equals the decoded count wherever it is used, and the count is the
    /// number of files the reference writes.
    func checkCounts(_ cases: [(path: String, frames: Int)]) throws {
        for (path, frames) in cases {
            let auto = try VideoFrames.count(path)
            let decoded = try VideoFrames.count(path, method: .decoding)
            #expect(auto.frames == frames && decoded.frames == frames, "\(path): \(auto.frames) / \(decoded.frames), reference \(frames)")
            // MJPEG is not predicted; vfr.mp4 has two packets with one timestamp (the decoder's
            // timestamp correction decides there), so it is counted by decoding.
            let expectPackets = !path.hasSuffix(".avi") && !path.hasSuffix("vfr.mp4")
            #expect((auto.method == .packets) == expectPackets, "\(path): counted by \(auto.method)")
        }
    }

    @Test func fixtureFrameCountsFromPacketsEqualDecodedCounts() throws {
        try checkCounts(try VideoFixtures.expected().map { (VideoFixtures.path($0.name), $0.expected.rgb24.count) })
    }

    @Test(.enabled(if: TestData.hasShared)) func evalMiniFrameCountsFromPacketsEqualDecodedCounts() throws {
        try checkCounts(try EvalMini.decoded().map { (EvalMini.video($0.key), $0.value.rgb24.count) })
    }

    /// Frames picked by index are the streamed frames at those indices, in the order asked.
    func checkChosenFrames(_ path: String) throws {
        var all: [Image8] = []
        try VideoFrames.forEachFrame(path) { _, image in all.append(image) }
        let n = all.count
        let indices = [5, 1, 5, n, 2, n / 2]
        let count = try VideoFrames.count(path)
        let picked = try VideoFrames.frames(path, at: indices, count: count)
        #expect(picked == indices.map { all[$0 - 1] }, "\(path)")
        let sampled = try VideoFrames.sample(path) { frames in
            #expect(frames == n)
            return [1, (frames + 1) / 2, frames]
        }
        #expect(sampled.frameCount == n && sampled.indices == [1, (n + 1) / 2, n])
        #expect(sampled.frames == sampled.indices.map { all[$0 - 1] }, "\(path)")
        #expect(try VideoFrames.frames(path, at: []).isEmpty)
        #expect(throws: BLError.self) { try VideoFrames.frames(path, at: [n + 1]) }
        #expect(throws: BLError.self) { try VideoFrames.frames(path, at: [0]) }
        do {
            _ = try VideoFrames.frames(path, at: [1, n + 3])
        } catch let e as BLError {
            #expect(e.description.contains("has \(n) frames"), "\(e)")
        }
    }

    @Test func chosenFramesAreTheStreamedFrames() throws {
        for name in ["vfr.mp4", "late.mkv", "odd.webm", "rot90.mp4"] { try checkChosenFrames(VideoFixtures.path(name)) }
    }

    @Test(.enabled(if: TestData.hasShared)) func chosenEvalMiniFramesAreTheStreamedFrames() throws {
        for name in ["v002", "v005"] { try checkChosenFrames(EvalMini.video(name)) }
    }

    /// Decoding stops after the last frame asked for (one decoded frame of look-ahead).
    @Test func decodingStopsAfterTheLastWantedFrame() throws {
        let pipeline = try VideoPipeline(path: VideoFixtures.path("h264.mkv"), options: VideoOptions(), target: .rgb24)
        var seen: [Int] = []
        let reached = try pipeline.run(wanted: { $0 == 2 }, stopAfter: 2) { i, frame in
            seen.append(i)
            #expect((frame != nil) == (i == 2))
        }
        #expect(reached == 2 && seen == [1, 2])
        #expect(pipeline.decoder.framesDecoded <= 3)
    }

    /// A packet-based count is checked against what the decoder gives; `sample` then counts by
    /// decoding instead.
    @Test func aWrongPacketCountIsCaught() throws {
        let path = VideoFixtures.path("h264.mkv")
        var count = try VideoFrames.count(path)
        #expect(count.method == .packets)
        var stamps = try #require(count.timestamps)
        stamps[3] += 1
        count.timestamps = stamps
        #expect {
            _ = try VideoFrames.frames(path, at: [8], count: count)
        } throws: { e in (e as? BLError)?.kind == .mismatch }
        // Before the differing frame, nothing is in doubt.
        #expect(try VideoFrames.frames(path, at: [2], count: count).count == 1)
    }

    /// The frame-rate stage's arithmetic on its own: regular timestamps give one frame each,
    /// a gap repeats the previous frame, a late first frame is padded only in plain CFR.
    @Test func frameRateSyncRepeatsAndDrops() throws {
        func run(_ mode: SyncMode, _ pts: [Int64]) throws -> [FrameRateSync.Step] {
            var s = FrameRateSync(mode: mode, filterTimeBase: AVRational(num: 1, den: 1000),
                                  frameRate: AVRational(num: 12, den: 1), maxFrames: 1000, path: "t")
            return try pts.map { try s.step($0) } + [try s.step(nil)]
        }
        let regular = (0..<6).map { Int64(($0 * 1000 + 6) / 12) }
        #expect(try run(.vscfr, regular).map(\.current) == [1, 1, 1, 1, 1, 1, 0])
        let gap: [Int64] = [0, 83, 417, 500]  // frame 3 comes 4 frames after frame 2
        let steps = try run(.vscfr, gap)
        #expect(steps.map { $0.previous + $0.current } == [1, 1, 4, 1, 0])
        #expect(steps[2].previous == 2)  // round(delta0 - 0.6) copies of frame 2, then frame 3
        #expect(try run(.vscfr, [500, 583]).map(\.current) == [1, 1, 0])
        #expect(try run(.cfr, [500, 583]).map { $0.previous + $0.current } == [7, 1, 0])
        // Frames 10 ms apart at 12 fps: kept while the output is less than 1.1 frames ahead.
        #expect(try run(.vscfr, [0, 10, 20, 30, 40]).map(\.current) == [1, 1, 1, 0, 0, 0])
        #expect(throws: BLError.self) { try run(.vscfr, [0, Int64(1) << 50]) }
    }

    @Test func displayMatricesGiveFFmpegsRotations() throws {
        var m = [Int32](repeating: 0, count: 9)
        func orientation(_ angle: Double?, hflip: Bool = false) -> Orientation {
            guard let angle else { return Orientation(displayMatrix: nil) }
            av_display_rotation_set(&m, angle)
            if hflip { av_display_matrix_flip(&m, 1, 0) }
            return m.withUnsafeBufferPointer { Orientation(displayMatrix: $0.baseAddress) }
        }
        #expect(orientation(nil) == .none)
        #expect(orientation(0) == .none)
        // fftools' get_rotation: theta = -round(av_display_rotation_get(m)), in [0, 360).
        #expect(orientation(-90) == .transpose(2))
        #expect(orientation(90) == .transpose(1))
        #expect(orientation(180) == .flip(horizontal: true, vertical: true))
        #expect(orientation(0, hflip: true) == .flip(horizontal: true, vertical: false))
        #expect(orientation(45) == .rotate(45))
        m = [Int32](repeating: 0, count: 9)
        #expect(m.withUnsafeBufferPointer { Orientation(displayMatrix: $0.baseAddress) } == .none)
    }
}

@Suite struct VideoBadInputTests {
    func expectError(_ path: String, _ words: [String], options: VideoOptions = VideoOptions(),
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let c = try VideoFrames.count(path, options: options, method: .decoding)
            Issue.record("\(path): counted \(c.frames) frames, expected an error", sourceLocation: sourceLocation)
        } catch let e as BLError {
            let text = e.description
            #expect(text.contains(path), "\(text)", sourceLocation: sourceLocation)
            for w in words { #expect(text.contains(w), "\(text)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("\(path): \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func filesThatAreNotVideosAreRefused() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(String(repeating: "this is a text file, not a movie\n", count: 40).utf8).write(to: URL(fileURLWithPath: dir + "/text.mp4"))
        expectError(dir + "/text.mp4", ["not a video"])
        expectError(VideoFixtures.path("audio.mp4"), ["no video stream", "audio aac"])
        // An MP4 under a WebM name is read as what it is; without a video stream it is refused.
        try FileManager.default.copyItem(atPath: VideoFixtures.path("audio.mp4"), toPath: dir + "/audio.webm")
        expectError(dir + "/audio.webm", ["no video stream"])
        // A checkpoint is not a container either.
        expectError(TestData.fixture("parsers/tensors_zip.pth"), ["not a video"])
        FileManager.default.createFile(atPath: dir + "/empty.webm", contents: Data())
        expectError(dir + "/empty.webm", ["empty"])
        expectError(dir + "/missing.webm", ["No such file"])
        expectError(dir, ["not a regular file", "directory"])
        try #require(mkfifo(dir + "/fifo.webm", 0o600) == 0)
        let start = Date()
        expectError(dir + "/fifo.webm", ["not a regular file", "FIFO"])
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func zeroFramesAndUnknownCodecsAreRefused() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try VideoFixtures.writeZeroFrameAVI(dir + "/zero.avi")
        expectError(dir + "/zero.avi", ["no frames"])
        #expect(throws: BLError.self) { try VideoFrames.count(dir + "/zero.avi") }
        // The MJPEG AVI with an unknown FourCC: a video stream no decoder reads.
        var avi = [UInt8](try Data(contentsOf: URL(fileURLWithPath: VideoFixtures.path("mjpeg.avi"))))
        var patched = 0
        for i in 0..<(avi.count - 4) where avi[i..<(i + 4)].elementsEqual("MJPG".utf8) {
            avi.replaceSubrange(i..<(i + 4), with: Array("QQQQ".utf8))
            patched += 1
        }
        #expect(patched >= 2)
        try Data(avi).write(to: URL(fileURLWithPath: dir + "/unknown.avi"))
        expectError(dir + "/unknown.avi", ["no decoder"])
    }

    @Test func limitsAreEnforced() throws {
        var options = VideoOptions()
        options.maxFrames = 5
        expectError(VideoFixtures.path("odd.webm"), ["more than 5 frames"], options: options)
        options = VideoOptions()
        options.maxSide = 80
        options.shortSide = 64
        expectError(VideoFixtures.path("odd.webm"), ["above the limit"], options: options)
        options = VideoOptions()
        options.timeLimit = 1e-9
        expectError(VideoFixtures.path("odd.webm"), ["time limit"], options: options)
        options = VideoOptions()
        options.shortSide = 0
        expectError(VideoFixtures.path("odd.webm"), ["short side"], options: options)
    }

    /// Every video cut short at many offsets: an error naming the file (and how far it got),
    /// never fewer or other frames passed off as the video's.
    func checkTruncations(_ sources: [String]) throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var cutsFailing = 0, cuts = 0
        for source in sources {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
            let intact = try decodedHashes(source).hashes
            let n = bytes.count
            for cut in Set([1, 16, 200, n / 10, n / 4, n / 3, n / 2, 2 * n / 3, 3 * n / 4, 9 * n / 10, n - 100, n - 2, n - 1]).sorted()
            where cut > 0 && cut < n {
                let path = dir + "/cut\(cut)-" + source.lastPathComponent
                try bytes.prefix(cut).write(to: URL(fileURLWithPath: path))
                cuts += 1
                do {
                    let (hashes, _) = try decodedHashes(path)
                    // Only what the demuxer never reads was cut (a trailing index or tag).
                    #expect(hashes == intact, "\(path): decoded \(hashes.count) frames, the intact file \(intact.count)")
                } catch let e as BLError {
                    #expect(e.description.contains(path), "\(e)")
                    cutsFailing += 1
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }
        #expect(cutsFailing > cuts * 3 / 4, "\(cutsFailing) of \(cuts) cuts failed")
    }

    @Test func truncatedVideosFailClearly() throws {
        try checkTruncations(try VideoFixtures.expected().map { VideoFixtures.path($0.name) })
    }

    @Test(.enabled(if: TestData.hasShared)) func truncatedEvalMiniVideosFailClearly() throws {
        try checkTruncations(EvalMini.videos)
    }

    /// Bytes flipped anywhere: the decoder never crashes or hangs; a failure is an error naming
    /// the file (flips inside compressed data can also decode to other pixels, as with ffmpeg).
    @Test func corruptedVideosNeverCrash() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SeededRandom(state: 20_241_201)
        var failures = 0, runs = 0
        for (name, _) in try VideoFixtures.expected() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: VideoFixtures.path(name))))
            for k in 0..<12 {
                var b = bytes
                let flips = [1, 3, 20][k % 3]
                for _ in 0..<flips {
                    let i = Int(rng.next() % UInt64(b.count))
                    b[i] ^= UInt8(1) << UInt8(rng.next() % 8)
                }
                let path = dir + "/flip\(k)-" + name
                try Data(b).write(to: URL(fileURLWithPath: path))
                let start = Date()
                runs += 1
                do {
                    try ReferenceExtraction.extract(path, format: .jpeg) { _, _ in }
                } catch let e as BLError {
                    failures += 1
                    #expect(e.description.contains(path), "\(e)")
                }
                #expect(Date().timeIntervalSince(start) < 30, "\(path)")
                try FileManager.default.removeItem(atPath: path)
            }
        }
        #expect(failures > 0 && failures < runs)
    }
}

@Suite struct FramesCommandTests {
    /// `blconvert frames` on the eval-mini videos writes the reference's JPEG files byte for
    /// byte, and the list lines the script writes.
    @Test(.enabled(if: TestData.hasShared)) func framesWritesTheReferenceJPEGs() throws {
        let root = try #require(EvalMini.root)
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/frames"
        let r = CLI.run(["frames"] + EvalMini.videos + ["-o", out, "--list", dir + "/list.txt"])
        #expect(r.status == 0, "\(r.stderr)")
        let listed = try String(contentsOfFile: dir + "/list.txt", encoding: .utf8)
        let reference = try String(contentsOfFile: root + "/val_list.txt", encoding: .utf8)
        var expectedLines: [String] = []
        for line in reference.split(separator: "\n") {
            let f = line.split(separator: " ")
            expectedLines.append("\(out)/\(f[0]) 1 \(f[2]) -1")
        }
        #expect(listed == expectedLines.map { $0 + "\n" }.joined())
        #expect(r.stdout == listed)
        var compared = 0
        for name in EvalMini.names {
            let refFiles = try FileManager.default.contentsOfDirectory(atPath: root + "/frames/" + name).sorted()
            let ours = try FileManager.default.contentsOfDirectory(atPath: out + "/" + name).sorted()
            #expect(ours == refFiles, "\(name)")
            for f in refFiles {
                let a = try Data(contentsOf: URL(fileURLWithPath: root + "/frames/\(name)/\(f)"))
                let b = try Data(contentsOf: URL(fileURLWithPath: out + "/\(name)/\(f)"))
                #expect(a == b, "\(name)/\(f) differs")
                compared += 1
            }
        }
        #expect(compared == 192)
        #expect(listing(out) == Set(EvalMini.names))
    }

    /// `--png`: the RGB24 frames, losslessly.
    @Test func pngFramesAreTheDecodedFrames() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ref = try #require(try VideoFixtures.expected().first { $0.name == "odd444.mp4" }?.expected)
        let r = CLI.run(["frames", VideoFixtures.path("odd444.mp4"), "-o", dir, "--png", "--no-label", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/odd444").sorted()
        #expect(files == (1...ref.rgb24.count).map { String(format: "%05d.png", $0) })
        let hashes = try files.map { sha256Hex(try ImageDecoder.decode(path: dir + "/odd444/" + $0).rgb) }
        #expect(hashes == ref.rgb24)
        let json = try #require(r.json)
        let video = try #require((json["videos"] as? [[String: Any]])?.first)
        #expect(video["frames"] as? Int == ref.rgb24.count && video["width"] as? Int == ref.width)
        #expect(json["list"] as? [String] == ["\(dir)/odd444 1 \(ref.rgb24.count)"])
    }

    @Test func framesReportsBadVideosAndLeavesNothingBehind() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out"
        let good = VideoFixtures.path("odd.webm"), bad = VideoFixtures.path("audio.mp4")
        let r = CLI.run(["frames", good, bad, "-o", out, "--label", "7"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("audio.mp4") && r.stderr.contains("no video stream"), "\(r.stderr)")
        #expect(r.stdout == "\(out)/odd 1 12 7\n")
        #expect(listing(out) == ["odd"], "no temporary folders remain")
        #expect(listing(out + "/odd").count == 12)

        // An existing folder is replaced only with --force.
        let again = CLI.run(["frames", good, "-o", out])
        #expect(again.status == 2 && again.stderr.contains("--force"), "\(again.stderr)")
        FileManager.default.createFile(atPath: out + "/odd/marker", contents: Data())
        let forced = CLI.run(["frames", good, "-o", out, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(listing(out) == ["odd"] && listing(out + "/odd").count == 12)

        // A truncated video: an error naming it, no folder.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/half.webm"))
        let half = CLI.run(["frames", dir + "/half.webm", "-o", out])
        #expect(half.status == 2 && half.stderr.contains("half.webm") && half.stderr.contains("reached frame"), "\(half.stderr)")
        #expect(listing(out) == ["odd"])

        // An existing list file is replaced only with --force; two videos may not share a folder.
        FileManager.default.createFile(atPath: dir + "/list.txt", contents: Data())
        #expect(CLI.run(["frames", good, "-o", dir + "/o2", "--list", dir + "/list.txt"]).status == 2)
        #expect(CLI.run(["frames", good, dir + "/odd.webm", "-o", dir + "/o3"]).status == 2)
        #expect(CLI.run(["frames", "-o", dir + "/o4"]).status == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/o3"))
    }

    @Test func framesHasHelpWithExamples() {
        let r = CLI.run(["frames", "--help"])
        #expect(r.status == 0)
        let text = r.stdout + r.stderr
        #expect(text.contains("Examples:") && text.contains("--png") && text.contains("--list"))
    }
}
