import BLCore
import CFFmpeg

/// The output of the `scale` filter in the reference command line, reproduced with libswscale
/// as libavfilter 8 (FFmpeg 5.1) drives it:
///
/// - one swscale context does the resize *and* the conversion to the output format, because
///   ffmpeg's format negotiation gives the user's scale filter the encoder's format directly
///   (rgb24 for `-f rawvideo -pix_fmt rgb24`; yuvj420p, the closest of mjpeg's
///   yuvj420p/yuvj422p/yuvj444p, for `%05d.jpg`): there is no second conversion;
/// - flags 0 (ffmpeg 5.1 passes no `sws_flags`), so libswscale picks its default, bicubic, with
///   default parameters; one slice thread (outputs are identical with more);
/// - chroma: yuv420p input at the MPEG-2 vertical position (`src_v_chr_pos` 128), others at
///   libswscale's defaults;
/// - colour: the input range from the frames (the context is rebuilt when a frame brings a
///   range other than the one it was built with), and before every frame
///   `sws_setColorspaceDetails` with the coefficients of the frame's colour space (BT.601 when
///   unknown), its range when it has one, and the output range libswscale chose;
/// - every decoded frame passes through, also those the frame-rate stage drops, because that
///   per-frame call leaves state behind.
final class ScaleStage {
    /// What the filter's output link is negotiated to.
    enum Target: Sendable {
        /// `-f rawvideo -pix_fmt rgb24`.
        case rgb24
        /// The mjpeg encoder of `%05d.jpg`: the best full-range YUV format for the input.
        case mjpeg
    }

    let target: Target
    /// Known once the first frame arrived.
    private(set) var outputFormat = AV_PIX_FMT_NONE
    private let shortSide: Int32
    private let widthIsLonger: Bool
    private let path: String
    private let maxSide: Int

    /// The output size, fixed by the first frame (`eval=init`).
    private(set) var outputWidth: Int32 = 0
    private(set) var outputHeight: Int32 = 0
    private var configured = false
    private var sws: OpaquePointer?
    private var passthrough = false
    /// The link as last configured.
    private var linkWidth: Int32 = 0
    private var linkHeight: Int32 = 0
    private var linkFormat: Int32 = -1
    private var linkSAR = AVRational(num: 0, den: 1)
    private var inFrameRange = AVCOL_RANGE_UNSPECIFIED

    /// `codedWidth`/`codedHeight`: the stream's stored size, from which the reference script
    /// chooses `scale=-1:S` (wider) or `scale=S:-1`.
    init(target: Target, shortSide: Int, codedWidth: Int32, codedHeight: Int32, maxSide: Int, path: String) {
        self.target = target
        self.shortSide = Int32(clamping: shortSide)
        widthIsLonger = codedWidth > codedHeight
        self.maxSide = maxSide
        self.path = path
    }

    deinit { sws_freeContext(sws) }

    /// The best of mjpeg's full-range formats for frames of `input` format, as libavfilter
    /// picks it for the link into the encoder.
    static func jpegFormat(for input: AVPixelFormat) -> AVPixelFormat {
        let hasAlpha = (av_pix_fmt_desc_get(input)?.pointee.nb_components ?? 3) % 2 == 0
        var best = AV_PIX_FMT_NONE
        for p in [AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P] {
            best = av_find_best_pix_fmt_of_2(best, p, input, hasAlpha ? 1 : 0, nil)
        }
        return best
    }

    /// What the filter sees of a frame apart from its pixels.
    struct Props {
        var width: Int32
        var height: Int32
        var format: Int32
        var sar: AVRational
        var range: AVColorRange
        var colorspace: AVColorSpace

        /// The properties of `frame` after `orientation` (a transpose swaps the sides and the
        /// aspect ratio).
        init(_ frame: Frame, orientation: Orientation) {
            let f = frame.ptr.pointee
            width = f.width
            height = f.height
            format = f.format
            sar = f.sample_aspect_ratio
            range = f.color_range
            colorspace = f.colorspace
            if orientation.swapsSides {
                swap(&width, &height)
                if sar.num != 0 { sar = AVRational(num: sar.den, den: sar.num) }
            }
        }
    }

    /// Passes one frame through the filter. `pixels` gives the (oriented) frame when its
    /// output is wanted; without it only the filter's state advances.
    func process(_ p: Props, pixels: (() throws -> Frame)?) throws -> Frame? {
        if !configured {
            outputFormat = target == .rgb24 ? AV_PIX_FMT_RGB24 : Self.jpegFormat(for: AVPixelFormat(rawValue: p.format))
            guard outputFormat != AV_PIX_FMT_NONE else {
                throw BLError(.unsupported, "no JPEG pixel format for \(FF.pixelFormatName(p.format)) frames", file: path)
            }
            try evaluateSize(p)
            try configure(p)
            configured = true
        } else if p.width != linkWidth || p.height != linkHeight || p.format != linkFormat {
            throw BLError(.unsupported, "the picture changes from \(linkWidth)x\(linkHeight) \(FF.pixelFormatName(linkFormat)) to \(p.width)x\(p.height) \(FF.pixelFormatName(p.format)) within the video; ffmpeg would rebuild its filters there, which is not reproduced", file: path)
        } else if p.sar.num != linkSAR.num || p.sar.den != linkSAR.den
                    || (p.range != AVCOL_RANGE_UNSPECIFIED && p.range != inFrameRange) {
            try configure(p)
        }
        guard let sws else {
            return try pixels?().reference()
        }
        updateColorspace(sws, p)
        guard let pixels else { return nil }
        let src = try pixels()
        let out = try Frame(format: outputFormat, width: outputWidth, height: outputHeight)
        av_frame_copy_props(out.ptr, src.ptr)
        out.ptr.pointee.width = outputWidth
        out.ptr.pointee.height = outputHeight
        let rgb = (av_pix_fmt_desc_get(outputFormat)?.pointee.flags ?? 0) & UInt64(AV_PIX_FMT_FLAG_RGB) != 0
        if rgb {
            out.ptr.pointee.colorspace = AVCOL_SPC_RGB
        } else if out.ptr.pointee.colorspace == AVCOL_SPC_RGB {
            out.ptr.pointee.colorspace = AVCOL_SPC_UNSPECIFIED
        }
        out.ptr.pointee.color_range = outFull ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG
        var num: Int32 = 0, den: Int32 = 0
        av_reduce(&num, &den, Int64(p.sar.num) * Int64(outputHeight) * Int64(linkWidth),
                  Int64(p.sar.den) * Int64(outputWidth) * Int64(linkHeight), Int64(Int32.max))
        out.ptr.pointee.sample_aspect_ratio = AVRational(num: num, den: den)
        let r = sws_scale_frame(sws, out.ptr, src.ptr)
        guard r >= 0 else { throw BLError(.format, FF.describe("cannot scale a frame", r), file: path) }
        return out
    }

    /// The output range of the last colour-space update.
    private var outFull = false

    /// `scale=-1:S` or `scale=S:-1` evaluated on the first frame's size: the other side is
    /// av_rescale(S, ...), rounded to nearest.
    private func evaluateSize(_ p: Props) throws {
        let w = p.width, h = p.height
        if widthIsLonger {
            outputHeight = shortSide
            outputWidth = Int32(clamping: av_rescale(Int64(shortSide), Int64(w), Int64(h)))
        } else {
            outputWidth = shortSide
            outputHeight = Int32(clamping: av_rescale(Int64(shortSide), Int64(h), Int64(w)))
        }
        guard outputWidth > 0, outputHeight > 0, Int(outputWidth) <= maxSide, Int(outputHeight) <= maxSide else {
            throw BLError(.unsupported, "scaling \(w)x\(h) to a short side of \(shortSide) gives \(outputWidth)x\(outputHeight), outside 1...\(maxSide) pixels a side", file: path)
        }
    }

    /// config_props: a new context for the link's current parameters.
    private func configure(_ p: Props) throws {
        sws_freeContext(sws)
        sws = nil
        linkWidth = p.width
        linkHeight = p.height
        linkFormat = p.format
        linkSAR = p.sar
        if p.range != AVCOL_RANGE_UNSPECIFIED { inFrameRange = p.range }
        passthrough = linkWidth == outputWidth && linkHeight == outputHeight && linkFormat == outputFormat.rawValue
        guard !passthrough else { return }
        guard let s = sws_alloc_context() else { throw BLError(.io, "out of memory for a scaler", file: path) }
        let opts: [(String, Int64)] = [
            ("srcw", Int64(linkWidth)), ("srch", Int64(linkHeight)), ("src_format", Int64(linkFormat)),
            ("dstw", Int64(outputWidth)), ("dsth", Int64(outputHeight)), ("dst_format", Int64(outputFormat.rawValue)),
            ("sws_flags", 0), ("threads", 1),
        ]
        var ok = true
        for (name, value) in opts { ok = ok && av_opt_set_int(UnsafeMutableRawPointer(s), name, value, 0) >= 0 }
        let param = Double(blv_sws_param_default())
        ok = ok && av_opt_set_double(UnsafeMutableRawPointer(s), "param0", param, 0) >= 0
        ok = ok && av_opt_set_double(UnsafeMutableRawPointer(s), "param1", param, 0) >= 0
        if inFrameRange != AVCOL_RANGE_UNSPECIFIED {
            ok = ok && av_opt_set_int(UnsafeMutableRawPointer(s), "src_range", inFrameRange == AVCOL_RANGE_JPEG ? 1 : 0, 0) >= 0
        }
        let inV: Int64 = linkFormat == AV_PIX_FMT_YUV420P.rawValue ? 128 : -513
        let outV: Int64 = outputFormat == AV_PIX_FMT_YUV420P ? 128 : -513
        for (name, value) in [("src_h_chr_pos", -513), ("src_v_chr_pos", inV), ("dst_h_chr_pos", -513), ("dst_v_chr_pos", outV)] {
            ok = ok && av_opt_set_int(UnsafeMutableRawPointer(s), name, value, 0) >= 0
        }
        sws = s
        guard ok else { throw BLError(.unsupported, "libswscale refuses the scaler options", file: path) }
        let r = sws_init_context(s, nil, nil)
        guard r >= 0 else {
            throw BLError(.unsupported, FF.describe("cannot convert \(linkWidth)x\(linkHeight) \(FF.pixelFormatName(linkFormat)) to \(outputWidth)x\(outputHeight) \(FF.pixelFormatName(outputFormat.rawValue))", r), file: path)
        }
    }

    /// The per-frame colour-space update of scale_frame (in_color_matrix "auto").
    private func updateColorspace(_ sws: OpaquePointer, _ p: Props) {
        var invTable: UnsafeMutablePointer<Int32>? = nil, table: UnsafeMutablePointer<Int32>? = nil
        var inFull: Int32 = 0, outFullValue: Int32 = 0
        var brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
        _ = sws_getColorspaceDetails(sws, &invTable, &inFull, &table, &outFullValue, &brightness, &contrast, &saturation)
        var space = Int32(p.colorspace.rawValue)
        if space < 1 || space > 10 || space == 8 { space = Int32(AVCOL_SPC_BT470BG.rawValue) }
        let coefficients = sws_getCoefficients(space)
        if p.range != AVCOL_RANGE_UNSPECIFIED {
            inFull = p.range == AVCOL_RANGE_JPEG ? 1 : 0
        }
        _ = sws_setColorspaceDetails(sws, coefficients, inFull, coefficients, outFullValue, brightness, contrast, saturation)
        outFull = outFullValue != 0
    }
}
