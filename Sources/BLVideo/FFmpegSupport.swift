import BLCore
import CFFmpeg
import CFFmpegLoader

/// Small helpers around the FFmpeg C API: error text with the library's own message, and
/// owners that free frames, packets and codec contexts.
enum FF {
    /// Installed once: libav* messages are kept with their demuxer or decoder, never printed.
    private static let logCapture: Void = { blv_install_log_capture() }()

    /// Loads FFmpeg's libraries (once; they are not linked, see CFFmpegLoader) and installs the log
    /// capture. Every way into the FFmpeg API starts here: throws `.unsupported`, naming the
    /// libraries and how to install them, when they cannot be loaded.
    static func prepare(file: String? = nil) throws {
        guard blv_ffmpeg_load() == 0 else {
            throw BLError(.unsupported, String(cString: blv_ffmpeg_load_error()), file: file)
        }
        _ = logCapture
    }

    /// The last error-level message recorded in `m`, if any.
    static func lastMessage(_ m: UnsafeMutablePointer<blv_messages>?) -> String? {
        guard let m else { return nil }
        let s = withUnsafeBytes(of: &m.pointee.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return s.isEmpty ? nil : s
    }

    static func text(_ code: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 128)
        blv_err2str(code, &buf, buf.count)
        return cString(buf)
    }

    /// "what: library message (error text)" for a failed call.
    static func describe(_ what: String, _ code: Int32, _ messages: UnsafeMutablePointer<blv_messages>? = nil) -> String {
        let text = FF.text(code)
        if let m = lastMessage(messages), m != text { return "\(what): \(m) (\(text))" }
        return "\(what): \(text)"
    }

    static let eof = blv_error_eof()
    static let again = blv_averror(EAGAIN)
    static let exit = blv_error_exit()
    static let noPTS = blv_nopts()
    static let timeBaseQ = blv_time_base_q()

    /// The text of a NUL-terminated buffer.
    static func cString(_ buf: [CChar]) -> String {
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func string(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "?" }

    static func pixelFormatName(_ f: Int32) -> String {
        FF.string(av_get_pix_fmt_name(AVPixelFormat(rawValue: f)))
    }

    static func codecName(_ id: AVCodecID) -> String { FF.string(avcodec_get_name(id)) }
}

/// An owned AVFrame.
final class Frame {
    let ptr: UnsafeMutablePointer<AVFrame>

    init() throws {
        guard let p = av_frame_alloc() else { throw BLError(.io, "out of memory for a video frame") }
        ptr = p
    }

    /// A new frame with its own buffers of the given layout (aligned as libavfilter's are).
    convenience init(format: AVPixelFormat, width: Int32, height: Int32) throws {
        try self.init()
        ptr.pointee.format = format.rawValue
        ptr.pointee.width = width
        ptr.pointee.height = height
        let r = av_frame_get_buffer(ptr, 0)
        guard r >= 0 else {
            throw BLError(.io, FF.describe("cannot allocate a \(width)x\(height) \(FF.pixelFormatName(format.rawValue)) frame", r))
        }
    }

    /// Another reference to the same buffers.
    func reference() throws -> Frame {
        let f = try Frame()
        let r = av_frame_ref(f.ptr, ptr)
        guard r >= 0 else { throw BLError(.io, FF.describe("cannot reference a video frame", r)) }
        return f
    }

    deinit {
        var p: UnsafeMutablePointer<AVFrame>? = ptr
        av_frame_free(&p)
    }

    var width: Int32 { ptr.pointee.width }
    var height: Int32 { ptr.pointee.height }
    var format: Int32 { ptr.pointee.format }
    func data(_ i: Int32) -> UnsafeMutablePointer<UInt8>? { blv_frame_data(ptr, i) }
    func linesize(_ i: Int32) -> Int32 { blv_frame_linesize(ptr, i) }
}

/// An owned AVPacket.
final class Packet {
    let ptr: UnsafeMutablePointer<AVPacket>

    init() throws {
        guard let p = av_packet_alloc() else { throw BLError(.io, "out of memory for a packet") }
        ptr = p
    }

    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = ptr
        av_packet_free(&p)
    }
}

/// An owned AVCodecContext.
final class CodecContext {
    let ptr: UnsafeMutablePointer<AVCodecContext>

    init(_ codec: UnsafePointer<AVCodec>?) throws {
        guard let p = avcodec_alloc_context3(codec) else { throw BLError(.io, "out of memory for a codec context") }
        ptr = p
    }

    deinit {
        var p: UnsafeMutablePointer<AVCodecContext>? = ptr
        avcodec_free_context(&p)
    }
}

extension AVRational {
    var isValid: Bool { num > 0 && den > 0 }
    var text: String { "\(num)/\(den)" }
}
