import BLCore
import BLMedia
import CFFmpeg

/// What a video is and gives, as the extraction sees it.
package struct VideoInfo: Sendable, Equatable {
    /// libavformat's demuxer name ("matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "avi").
    package var container: String
    package var codec: String
    package var streamIndex: Int
    /// The stored (unrotated) size, from which the reference chooses `scale=-1:256` or `256:-1`.
    package var codedWidth: Int
    package var codedHeight: Int
    /// The output frames' size.
    package var width: Int
    package var height: Int
    /// The automatic rotation applied ("none", "90 degrees clockwise", ...).
    package var rotation: String
    /// The output frame rate ffmpeg numbers frames by ("12/1").
    package var frameRate: String
    /// "vscfr" (single-stream file) or "cfr".
    package var syncMode: String
    /// Output frames: the number of files the reference writes.
    package var frames: Int
    /// Frames the decoder gave (differs from `frames` when timestamps make ffmpeg repeat or
    /// drop frames).
    package var decodedFrames: Int
}

/// A frame count and how it was obtained.
package struct VideoFrameCount: Sendable, Equatable {
    package var frames: Int
    package var method: FrameCountMethod
    /// With `.packets`: the decoded frames' predicted timestamps, checked when decoding.
    var timestamps: [Int64]?
}

/// Frames a sampler chose, with the count it chose them from.
package struct SampledFrames: Sendable {
    package var frameCount: Int
    package var countMethod: FrameCountMethod
    /// 1-based, as the sampler gave them.
    package var indices: [Int]
    /// `frames[i]` is output frame `indices[i]`.
    package var frames: [Image8]
}

/// Video files in, RGB24 frames out: bit for bit what `ffmpeg -i V -vf scale=-1:256 (256:-1 when
/// the stored height is the larger) -f rawvideo -pix_fmt rgb24 -` writes (FFmpeg 5.1), numbered
/// as the reference extraction numbers its `%05d.jpg` files (the same frames before JPEG
/// compression). Memory is bounded by the frames asked for, not by the video's length.
///
/// For a sampler (`eval --videos`, `run MODEL VIDEO`): `sample(path) { count in indices }`, or
/// `count` then `frames(at:)`. The count is the number of frames the extraction writes, which
/// the container's metadata does not reliably give: it comes from the packets without decoding
/// for VP9 and H.264 streams where that provably equals the decoded count (see
/// `PacketPrediction`), else from a decoding pass (decode only, no scaling). A packet-based
/// count is checked against the decoded timestamps when the frames are then decoded; `sample`
/// falls back to a decoded count if it ever disagrees.
package enum VideoFrames {
    /// How many frames the extraction writes for `path`. `method` nil: from packets where
    /// possible, else by decoding.
    package static func count(_ path: String, options: VideoOptions = VideoOptions(),
                              method: FrameCountMethod? = nil) throws -> VideoFrameCount {
        if method != .decoding {
            let input = try VideoInput(path: path, options: options)
            if let stamps = try PacketPrediction.timestamps(input) {
                var sync = FrameRateSync(mode: input.syncMode, filterTimeBase: input.timeBase, frameRate: input.frameRate,
                                         maxFrames: options.maxFrames, path: path)
                var n = 0
                for t in stamps {
                    let s = try sync.step(t)
                    n += s.previous + s.current
                }
                n += try sync.step(nil).previous
                guard n > 0 else { throw BLError(.format, "the video stream gives no frames", file: path) }
                return VideoFrameCount(frames: n, method: .packets, timestamps: stamps)
            }
            if method == .packets {
                throw BLError(.unsupported, "the frame count of this \(input.codecName) stream cannot be shown from its packets; count by decoding", file: path)
            }
        }
        let pipeline = try VideoPipeline(path: path, options: options, target: .rgb24)
        let n = try pipeline.run(wanted: { _ in false }) { _, _ in }
        return VideoFrameCount(frames: n, method: .decoding, timestamps: nil)
    }

    /// Output frames `indices` (1-based, any order, repeats allowed) as RGB24 images, decoding
    /// up to the last one asked for. With `count` from `count(_:)`, a packet-based count is
    /// checked on the way.
    package static func frames(_ path: String, at indices: [Int], options: VideoOptions = VideoOptions(),
                               count: VideoFrameCount? = nil) throws -> [Image8] {
        do {
            return try decode(path, indices, options, expected: count?.timestamps)
        } catch let m as VideoPipeline.PredictionMismatch {
            throw BLError(.mismatch, "the frame count from the packets does not hold: decoded frame \(m.frame) differs; count again with method .decoding", file: path)
        }
    }

    /// Counts, lets `choose` pick frames from the count, and decodes them.
    package static func sample(_ path: String, options: VideoOptions = VideoOptions(),
                               choose: (_ frameCount: Int) throws -> [Int]) throws -> SampledFrames {
        var c = try count(path, options: options)
        var indices = try choose(c.frames)
        let frames: [Image8]
        do {
            frames = try decode(path, indices, options, expected: c.timestamps)
        } catch is VideoPipeline.PredictionMismatch {
            c = try count(path, options: options, method: .decoding)
            indices = try choose(c.frames)
            frames = try decode(path, indices, options, expected: nil)
        }
        return SampledFrames(frameCount: c.frames, countMethod: c.method, indices: indices, frames: frames)
    }

    /// Every output frame in order, one at a time (nothing is kept).
    @discardableResult
    package static func forEachFrame(_ path: String, options: VideoOptions = VideoOptions(),
                                     _ body: (_ index: Int, _ frame: Image8) throws -> Void) throws -> VideoInfo {
        let pipeline = try VideoPipeline(path: path, options: options, target: .rgb24)
        let n = try pipeline.run(wanted: { _ in true }) { i, frame in
            guard let frame else { return }
            try body(i, try image(frame, path: path))
        }
        return info(pipeline, frames: n)
    }

    private static func decode(_ path: String, _ indices: [Int], _ options: VideoOptions, expected: [Int64]?) throws -> [Image8] {
        guard !indices.isEmpty else { return [] }
        if let bad = indices.first(where: { $0 < 1 }) {
            throw BLError(.invalidArgument, "frame \(bad) requested; frames are numbered from 1", file: path)
        }
        let wanted = Set(indices)
        let last = indices.max() ?? 1
        var got: [Int: Image8] = [:]
        let pipeline = try VideoPipeline(path: path, options: options, target: .rgb24)
        let reached = try pipeline.run(wanted: { wanted.contains($0) }, stopAfter: last, expected: expected) { i, frame in
            if let frame { got[i] = try image(frame, path: path) }
        }
        return try indices.map { i in
            guard let f = got[i] else {
                throw BLError(.invalidArgument, "frame \(i) requested; the video has \(reached) frames", file: path)
            }
            return f
        }
    }

    /// A filtered RGB24 frame as an Image8 (one copy, dropping the row padding).
    static func image(_ frame: Frame, path: String) throws -> Image8 {
        let w = Int(frame.width), h = Int(frame.height), ls = Int(frame.linesize(0))
        guard frame.format == AV_PIX_FMT_RGB24.rawValue, w > 0, h > 0, ls >= w * 3, let base = frame.data(0) else {
            throw BLError(.format, "not an RGB24 frame (\(FF.pixelFormatName(frame.format)) \(w)x\(h))", file: path)
        }
        let row = w * 3
        let rgb = [UInt8](unsafeUninitializedCapacity: row * h) { buf, n in
            if let dst = buf.baseAddress {
                for y in 0..<h { (dst + y * row).update(from: base + y * ls, count: row) }
            }
            n = row * h
        }
        return try Image8(width: w, height: h, rgb: rgb)
    }

    static func info(_ p: VideoPipeline, frames: Int) -> VideoInfo {
        let par = p.input.codecpar.pointee
        let rate = p.sync.encoderTimeBase
        return VideoInfo(container: p.input.containerName, codec: p.input.codecName, streamIndex: Int(p.input.streamIndex),
                         codedWidth: Int(par.width), codedHeight: Int(par.height),
                         width: p.outputSize.width, height: p.outputSize.height,
                         rotation: (p.orientation ?? .none).description, frameRate: "\(rate.den)/\(rate.num)",
                         syncMode: p.input.syncMode.rawValue, frames: frames, decodedFrames: p.decoder.framesDecoded)
    }
}
