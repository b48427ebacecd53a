import BLCore
import CFFmpeg
/// ffmpeg's frame-rate mode for the reference outputs. fftools 5.1 with `-vsync auto` gives the
/// image2 (`%05d.jpg`) and rawvideo muxers, which lack AVFMT_VARIABLE_FPS, constant frame rate;
/// "VSCFR" when the input file has a single stream (then a late first frame is not padded back
/// to time 0 with copies of itself).
enum SyncMode: String, Sendable {
    case cfr
    case vscfr
}

/// One video file opened for demuxing: the file read through its own descriptor (never a
/// FIFO or device, no URL protocols), the container probed by content and accepted only when it
/// is one of the video containers below, and the video stream ffmpeg would pick.
final class VideoInput {
    /// libavformat demuxer names read (MP4/MOV, Matroska/WebM, AVI). Others are refused: their
    /// timestamp handling (MPEG-TS discontinuities, ...) is not reproduced here.
    static let containers: Set<String> = ["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"]

    let path: String
    private let resources: Resources
    let format: UnsafeMutablePointer<AVFormatContext>
    let streamIndex: Int32
    let stream: UnsafeMutablePointer<AVStream>
    /// The demuxer's name, e.g. "matroska,webm".
    let containerName: String
    /// Added to every timestamp, in AV_TIME_BASE units: minus the file's start time, as ffmpeg
    /// shifts its input to start at 0.
    let tsOffset: Int64
    let syncMode: SyncMode
    /// The frame rate ffmpeg gives the filter graph (av_guess_frame_rate); 0/1 when unknown.
    let frameRate: AVRational
    private(set) var packetsRead = 0

    var timeBase: AVRational { stream.pointee.time_base }
    /// The demuxer's error messages.
    var messages: UnsafeMutablePointer<blv_messages> { resources.messages }
    var codecpar: UnsafeMutablePointer<AVCodecParameters> { stream.pointee.codecpar }
    var codecName: String { FF.codecName(codecpar.pointee.codec_id) }

    /// The descriptor, the I/O context and the demuxer, released together (also when opening
    /// fails half-way).
    private final class Resources {
        let input: UnsafeMutablePointer<blv_input>
        let messages: UnsafeMutablePointer<blv_messages>
        var io: UnsafeMutablePointer<AVIOContext>?
        var context: UnsafeMutablePointer<AVFormatContext>?

        init() {
            input = .allocate(capacity: 1)
            input.initialize(to: blv_input())
            input.pointee.fd = -1
            messages = .allocate(capacity: 1)
            messages.initialize(to: blv_messages())
        }

        deinit {
            if context != nil { avformat_close_input(&context) }
            if io != nil { blv_io_free(&io) }
            if input.pointee.fd >= 0 { close(input.pointee.fd) }
            input.deinitialize(count: 1)
            input.deallocate()
            messages.deinitialize(count: 1)
            messages.deallocate()
        }
    }

    init(path: String, options: VideoOptions) throws {
        try FF.prepare(file: path)
        self.path = path
        let res = Resources()
        var err: Int32 = 0
        var mode: UInt32 = 0
        var size: Int64 = 0
        let fd = blv_open_regular(path, &err, &mode, &size)
        guard fd >= 0 else {
            if err == -1 { throw BLError(.io, "not a regular file (\(Self.kindOfFile(mode)))", file: path) }
            throw BLError(.io, "cannot open: \(String(cString: strerror(err)))", file: path)
        }
        res.input.pointee.fd = fd
        res.input.pointee.size = size
        if let limit = options.timeLimit { res.input.pointee.deadline = blv_monotonic_seconds() + limit }
        let timeout = { (doing: String) throws in try Self.checkTimeout(res.input, doing, path) }
        let messages = res.messages
        guard size > 0 else { throw BLError(.format, "empty file", file: path) }
        guard let pb = blv_io_alloc(res.input) else { throw BLError(.io, "out of memory for reading", file: path) }
        res.io = pb

        var probed: UnsafePointer<AVInputFormat>? = nil
        let score = av_probe_input_buffer2(pb, &probed, path, nil, 0, 0)
        try timeout("probing")
        guard score >= 0, let fmt = probed else {
            throw BLError(.format, "not a video file: libavformat recognises no container in it", file: path)
        }
        let name = FF.string(fmt.pointee.name)
        guard Self.containers.contains(name) else {
            let long = FF.string(fmt.pointee.long_name)
            throw BLError(.format, "not a video container blconvert reads: the content looks like \(name) (\(long)); MP4/MOV, Matroska/WebM and AVI are read", file: path)
        }
        guard score > AVPROBE_SCORE_EXTENSION else {
            throw BLError(.format, "not a video file: the content is not recognisably \(name) (probe score \(score) of \(AVPROBE_SCORE_MAX); a file name alone scores at most \(AVPROBE_SCORE_EXTENSION))", file: path)
        }

        guard let ctx = avformat_alloc_context() else { throw BLError(.io, "out of memory for a demuxer", file: path) }
        ctx.pointee.pb = pb
        blv_attach_input(ctx, res.input, res.messages)
        var opened: UnsafeMutablePointer<AVFormatContext>? = ctx
        var r = avformat_open_input(&opened, path, fmt, nil)
        guard r >= 0, let fc = opened else {
            // avformat_open_input frees the context on failure (not our custom I/O).
            try timeout("reading the header")
            throw BLError(.format, FF.describe("cannot read the \(name) header", r, messages), file: path)
        }
        res.context = fc
        r = avformat_find_stream_info(fc, nil)
        try timeout("reading the stream parameters")
        guard r >= 0 else { throw BLError(.format, FF.describe("cannot read the stream parameters", r, messages), file: path) }

        guard let chosen = Self.chooseVideoStream(fc), let st = fc.pointee.streams[Int(chosen)] else {
            throw BLError(.format, "no video stream (\(Self.streamSummary(fc)))", file: path)
        }
        for i in 0..<Int(fc.pointee.nb_streams) where Int32(i) != chosen {
            fc.pointee.streams[i]?.pointee.discard = AVDISCARD_ALL
        }
        let par = st.pointee.codecpar.pointee
        let w = Int(par.width), h = Int(par.height)
        if w > options.maxSide || h > options.maxSide || w * h > options.maxPixels {
            throw BLError(.unsupported, "the video is \(w)x\(h), above the limit of \(options.maxSide) pixels a side and \(options.maxPixels) pixels", file: path)
        }
        resources = res
        format = fc
        streamIndex = chosen
        stream = st
        containerName = name
        let start = fc.pointee.start_time
        tsOffset = start == FF.noPTS ? 0 : -start
        syncMode = fc.pointee.nb_streams == 1 ? .vscfr : .cfr
        frameRate = av_guess_frame_rate(fc, st, nil)
    }

    /// The next packet of the video stream with ffmpeg's input timestamp shift applied, or false
    /// at the end of the file.
    func readPacket(_ packet: Packet) throws -> Bool {
        let pkt = packet.ptr
        while true {
            try checkTimeout("reading packet \(packetsRead + 1)")
            let r = av_read_frame(format, pkt)
            if messages.pointee.errors != 0 {
                // The demuxer met damage and carried on; fewer or other packets would follow.
                if r >= 0 { av_packet_unref(pkt) }
                throw BLError(.format, "the file is damaged or truncated: \(FF.lastMessage(messages) ?? "the demuxer reports an error")",
                              file: path, location: "after packet \(packetsRead) of the video stream")
            }
            if r == FF.eof { return false }
            guard r >= 0 else {
                try checkTimeout("reading packet \(packetsRead + 1)")
                throw BLError(.format, FF.describe("cannot read packet \(packetsRead + 1) of the video stream", r, messages), file: path)
            }
            guard pkt.pointee.stream_index == streamIndex else {
                av_packet_unref(pkt)
                continue
            }
            packetsRead += 1
            if pkt.pointee.flags & AV_PKT_FLAG_CORRUPT != 0 {
                av_packet_unref(pkt)
                throw BLError(.format, "packet \(packetsRead) of the video stream is damaged (the file is truncated or corrupt)", file: path)
            }
            // Timestamp wrap correction does not apply: these demuxers use 64-bit timestamps.
            if tsOffset != 0 {
                let shift = av_rescale_q(tsOffset, FF.timeBaseQ, timeBase)
                if pkt.pointee.dts != FF.noPTS { pkt.pointee.dts += shift }
                if pkt.pointee.pts != FF.noPTS { pkt.pointee.pts += shift }
            }
            return true
        }
    }

    /// Throws when the time limit has passed (also set by libavformat's interrupt callback).
    func checkTimeout(_ doing: String) throws {
        try Self.checkTimeout(resources.input, doing, path)
    }

    private static func checkTimeout(_ input: UnsafeMutablePointer<blv_input>, _ doing: String, _ path: String) throws {
        if blv_input_expired(input) != 0 {
            throw BLError(.format, "gave up \(doing): the time limit for one video was reached", file: path)
        }
    }

    /// A decoder for the chosen stream, opened as ffmpeg opens it (packet time base, frame rate
    /// from the stream's average), with a picture-size limit.
    func openDecoder(options: VideoOptions, messages: UnsafeMutablePointer<blv_messages>? = nil) throws -> CodecContext {
        let par = codecpar
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw BLError(.unsupported, "no decoder for the video codec \(codecName) (stream \(streamIndex))", file: path)
        }
        let ctx = try CodecContext(codec)
        var r = avcodec_parameters_to_context(ctx.ptr, par)
        guard r >= 0 else { throw BLError(.format, FF.describe("bad \(codecName) stream parameters", r), file: path) }
        ctx.ptr.pointee.pkt_timebase = timeBase
        ctx.ptr.pointee.framerate = stream.pointee.avg_frame_rate
        ctx.ptr.pointee.thread_count = Int32(clamping: max(1, options.threads))
        ctx.ptr.pointee.max_pixels = Int64(options.maxPixels)
        ctx.ptr.pointee.opaque = messages.map { UnsafeMutableRawPointer($0) }
        r = avcodec_open2(ctx.ptr, codec, nil)
        guard r >= 0 else { throw BLError(.unsupported, FF.describe("cannot open the \(codecName) decoder", r, messages), file: path) }
        return ctx
    }

    /// ffmpeg's default video stream: the highest width x height, favouring streams that had
    /// packets while probing and default streams; attached pictures (cover art) only as a last
    /// resort.
    static func chooseVideoStream(_ fc: UnsafeMutablePointer<AVFormatContext>) -> Int32? {
        var best: Int32? = nil
        var bestScore = 0
        for i in 0..<Int(fc.pointee.nb_streams) {
            guard let st = fc.pointee.streams[i], st.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO else { continue }
            let par = st.pointee.codecpar.pointee
            var score = Int(par.width) * Int(par.height)
            if st.pointee.event_flags & AVSTREAM_EVENT_FLAG_NEW_PACKETS != 0 { score += 100_000_000 }
            if st.pointee.disposition & AV_DISPOSITION_DEFAULT != 0 { score += 5_000_000 }
            if st.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 { score = 1 }
            if score > bestScore {
                bestScore = score
                best = Int32(i)
            }
        }
        return best
    }

    static func streamSummary(_ fc: UnsafeMutablePointer<AVFormatContext>) -> String {
        let n = Int(fc.pointee.nb_streams)
        if n == 0 { return "the file has no streams" }
        let kinds = (0..<n).map { i -> String in
            guard let st = fc.pointee.streams[i] else { return "?" }
            let par = st.pointee.codecpar.pointee
            return FF.string(av_get_media_type_string(par.codec_type)) + " " + FF.codecName(par.codec_id)
        }
        return "streams: " + kinds.joined(separator: ", ")
    }

    static func kindOfFile(_ mode: UInt32) -> String {
        switch mode & 0o170000 {
        case 0o040000: return "a directory"
        case 0o010000: return "a FIFO"
        case 0o020000: return "a character device"
        case 0o060000: return "a block device"
        case 0o140000: return "a socket"
        default: return "not a plain file"
        }
    }
}
