import BLCore
import CFFmpeg

/// The reference extraction without the ffmpeg program:
/// `ffmpeg -i V -vf scale=-1:256 -threads 1 -qmin 1 -qmax 1 -q:v 0 %05d.jpg`
/// (`scale=256:-1` when the stored height is not the smaller side). The JPEG files are
/// libavcodec's MJPEG encoder's output for the frames the reference gives it (scaled straight
/// to yuvj420p, or the closest full-range format), with the encoder set up as ffmpeg 5.1 sets
/// it up, so they are the same bytes as the reference's files. PNG writes the RGB24 frames
/// (`-f rawvideo -pix_fmt rgb24`) losslessly instead.
package enum ReferenceExtraction {
    package enum ImageFormat: String, Sendable {
        case jpeg
        case png

        /// The file extension the frames get.
        package var fileExtension: String { self == .jpeg ? "jpg" : "png" }
    }

    /// Writes nothing itself: `body(n, bytes)` receives output frame n's file contents, in order.
    @discardableResult
    package static func extract(_ path: String, format: ImageFormat, options: VideoOptions = VideoOptions(),
                                _ body: (_ index: Int, _ bytes: [UInt8]) throws -> Void) throws -> VideoInfo {
        let pipeline = try VideoPipeline(path: path, options: options, target: format == .jpeg ? .mjpeg : .rgb24)
        var encoder: ImageEncoder? = nil
        let n = try pipeline.run(wanted: { _ in true }) { i, frame in
            guard let frame else { return }
            if encoder == nil {
                encoder = try ImageEncoder(format: format, first: frame, timeBase: pipeline.sync.encoderTimeBase, path: path)
            }
            guard let encoder else { return }
            try body(i, try encoder.encode(frame, index: i))
        }
        return VideoFrames.info(pipeline, frames: n)
    }
}

/// One still-image encoder of libavcodec, configured from the first frame as ffmpeg
/// configures its output stream (init_output_stream_encode) plus the reference's
/// `-threads 1 -qmin 1 -qmax 1 -q:v 0`.
final class ImageEncoder {
    private let codec: CodecContext
    private let packet: Packet
    private let path: String
    private let format: ReferenceExtraction.ImageFormat

    init(format: ReferenceExtraction.ImageFormat, first: Frame, timeBase: AVRational, path: String) throws {
        self.path = path
        self.format = format
        let id = format == .jpeg ? AV_CODEC_ID_MJPEG : AV_CODEC_ID_PNG
        guard let enc = avcodec_find_encoder(id) else {
            throw BLError(.unsupported, "libavcodec has no \(format.rawValue) encoder", file: path)
        }
        codec = try CodecContext(enc)
        packet = try Packet()
        let c = codec.ptr
        let f = first.ptr.pointee
        c.pointee.width = f.width
        c.pointee.height = f.height
        c.pointee.pix_fmt = AVPixelFormat(rawValue: f.format)
        c.pointee.time_base = timeBase
        c.pointee.framerate = AVRational(num: timeBase.den, den: timeBase.num)
        c.pointee.sample_aspect_ratio = f.sample_aspect_ratio
        c.pointee.color_range = f.color_range
        c.pointee.color_primaries = f.color_primaries
        c.pointee.color_trc = f.color_trc
        c.pointee.colorspace = f.colorspace
        c.pointee.chroma_sample_location = f.chroma_location
        if f.interlaced_frame != 0 {
            c.pointee.field_order = f.top_field_first != 0 ? AV_FIELD_TT : AV_FIELD_BB
        } else {
            c.pointee.field_order = AV_FIELD_PROGRESSIVE
        }
        c.pointee.thread_count = 1
        if format == .jpeg {
            c.pointee.flags |= blv_codec_flag_qscale()
            c.pointee.global_quality = 0  // -q:v 0, times FF_QP2LAMBDA
            c.pointee.qmin = 1
            c.pointee.qmax = 1
        }
        let r = avcodec_open2(c, enc, nil)
        guard r >= 0 else { throw BLError(.unsupported, FF.describe("cannot open the \(format.rawValue) encoder", r), file: path) }
    }

    /// The file contents for one output frame (ffmpeg sets the frame's quality and clears its
    /// picture type before encoding, and takes the aspect ratio from each frame).
    func encode(_ frame: Frame, index: Int) throws -> [UInt8] {
        let c = codec.ptr
        frame.ptr.pointee.pts = Int64(index - 1)
        frame.ptr.pointee.quality = c.pointee.global_quality
        frame.ptr.pointee.pict_type = AV_PICTURE_TYPE_NONE
        c.pointee.sample_aspect_ratio = frame.ptr.pointee.sample_aspect_ratio
        var r = avcodec_send_frame(c, frame.ptr)
        guard r >= 0 else { throw BLError(.format, FF.describe("cannot encode frame \(index) as \(format.rawValue)", r), file: path) }
        r = avcodec_receive_packet(c, packet.ptr)
        guard r >= 0, let data = packet.ptr.pointee.data else {
            throw BLError(.format, FF.describe("the \(format.rawValue) encoder gave no image for frame \(index)", r), file: path)
        }
        defer { av_packet_unref(packet.ptr) }
        return Array(UnsafeBufferPointer(start: data, count: Int(packet.ptr.pointee.size)))
    }
}
