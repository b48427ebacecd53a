import BLCore
import CFFmpeg

/// What ffmpeg 5.1's automatic rotation puts in front of the user's filters, decided from the
/// first frame's display matrix, else the stream's: a `transpose` (90 or 270 degrees, with a
/// flip for mirrored matrices), `hflip`/`vflip` (180 degrees, or a mirrored 0), or the `rotate`
/// filter for other angles, which is not reproduced (refused).
enum Orientation: Equatable, Sendable {
    case none
    /// vf_transpose `dir`: 0 counter-clockwise + vertical flip, 1 clockwise, 2 counter-clockwise,
    /// 3 clockwise + vertical flip.
    case transpose(Int32)
    case flip(horizontal: Bool, vertical: Bool)
    /// Degrees, not a multiple of 90.
    case rotate(Double)

    init(displayMatrix m: UnsafePointer<Int32>?) {
        guard let m else {
            self = .none
            return
        }
        var theta = -av_display_rotation_get(m).rounded(.toNearestOrAwayFromZero)
        theta -= 360 * (theta / 360 + 0.9 / 360).rounded(.down)
        if abs(theta - 90) < 1 {
            self = .transpose(m[3] > 0 ? 0 : 1)
        } else if abs(theta - 180) < 1 {
            self = m[0] < 0 || m[4] < 0 ? .flip(horizontal: m[0] < 0, vertical: m[4] < 0) : .none
        } else if abs(theta - 270) < 1 {
            self = .transpose(m[3] < 0 ? 3 : 2)
        } else if abs(theta) > 1 {
            self = .rotate(theta)
        } else if abs(theta) < 1 && m[4] < 0 {
            self = .flip(horizontal: false, vertical: true)
        } else {
            self = .none
        }
    }

    /// Degrees clockwise, for reports (0, 90, 180, 270; flips reported by `description`).
    var description: String {
        switch self {
        case .none: return "none"
        case .transpose(let d):
            return ["transpose (90 degrees counter-clockwise, flipped)", "90 degrees clockwise",
                    "90 degrees counter-clockwise", "transpose (90 degrees clockwise, flipped)"][Int(d & 3)]
        case .flip(let h, let v):
            return h && v ? "180 degrees" : h ? "horizontal flip" : "vertical flip"
        case .rotate(let t): return "\(t) degrees"
        }
    }

    var swapsSides: Bool {
        if case .transpose = self { return true }
        return false
    }

    /// The frame as the inserted filters output it (a new frame; `frame` itself when `.none`).
    func apply(_ frame: Frame, path: String) throws -> Frame {
        switch self {
        case .none:
            return frame
        case .rotate(let theta):
            throw BLError(.unsupported, "the video is displayed rotated by \(theta) degrees; only multiples of 90 are reproduced", file: path)
        case .transpose, .flip:
            break
        }
        let fmt = AVPixelFormat(rawValue: frame.format)
        guard let desc = av_pix_fmt_desc_get(fmt) else {
            throw BLError(.unsupported, "unknown pixel format \(frame.format)", file: path)
        }
        let d = desc.pointee
        let flags = d.flags
        let planes = av_pix_fmt_count_planes(fmt)
        let planar = flags & UInt64(AV_PIX_FMT_FLAG_PLANAR) != 0 || d.nb_components == 1
        let excluded = UInt64(AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)
        guard planar, flags & excluded == 0, planes == Int32(d.nb_components),
              !(swapsSides && d.log2_chroma_w != d.log2_chroma_h) else {
            throw BLError(.unsupported, "rotating \(FF.pixelFormatName(frame.format)) frames (\(description)) is not reproduced", file: path)
        }
        var step = [Int](repeating: 1, count: Int(planes))
        for c in 0..<Int32(d.nb_components) {
            let s = Int(blv_pixdesc_step(desc, c))
            guard s == 1 || s == 2 else {
                throw BLError(.unsupported, "rotating \(FF.pixelFormatName(frame.format)) frames is not reproduced", file: path)
            }
            step[Int(blv_pixdesc_plane(desc, c))] = s
        }
        let w = frame.width, h = frame.height
        let out = swapsSides ? try Frame(format: fmt, width: h, height: w) : try Frame(format: fmt, width: w, height: h)
        av_frame_copy_props(out.ptr, frame.ptr)
        for p in 0..<planes {
            let chroma = p == 1 || p == 2
            let sw = chroma ? Int(d.log2_chroma_w) : 0, sh = chroma ? Int(d.log2_chroma_h) : 0
            let iw = (Int(w) + (1 << sw) - 1) >> sw, ih = (Int(h) + (1 << sh) - 1) >> sh
            guard let src = frame.data(p), let dst = out.data(p) else {
                throw BLError(.format, "frame plane \(p) is missing", file: path)
            }
            let sls = Int(frame.linesize(p)), dls = Int(out.linesize(p))
            if step[Int(p)] == 1 {
                Self.move(UInt8.self, src, sls, dst, dls, iw, ih, self)
            } else {
                Self.move(UInt16.self, src, sls, dst, dls, iw, ih, self)
            }
        }
        if swapsSides && frame.ptr.pointee.sample_aspect_ratio.num != 0 {
            let sar = frame.ptr.pointee.sample_aspect_ratio
            out.ptr.pointee.sample_aspect_ratio = AVRational(num: sar.den, den: sar.num)
        }
        return out
    }

    /// One plane of `iw` x `ih` samples of type T moved as the filters do.
    private static func move<T>(_: T.Type, _ src: UnsafeMutablePointer<UInt8>, _ sls: Int,
                                _ dst: UnsafeMutablePointer<UInt8>, _ dls: Int, _ iw: Int, _ ih: Int,
                                _ o: Orientation) {
        func row(_ base: UnsafeMutablePointer<UInt8>, _ ls: Int, _ y: Int) -> UnsafeMutablePointer<T> {
            UnsafeMutableRawPointer(base + y * ls).assumingMemoryBound(to: T.self)
        }
        switch o {
        case .transpose(let dir):
            // Output plane ih x iw: out[r][c] = in[dir & 1 ? ih-1-c : c][dir & 2 ? iw-1-r : r].
            for r in 0..<iw {
                let col = dir & 2 != 0 ? iw - 1 - r : r
                let d = row(dst, dls, r)
                for c in 0..<ih {
                    d[c] = row(src, sls, dir & 1 != 0 ? ih - 1 - c : c)[col]
                }
            }
        case .flip(let horizontal, let vertical):
            for y in 0..<ih {
                let s = row(src, sls, vertical ? ih - 1 - y : y), d = row(dst, dls, y)
                if horizontal {
                    for x in 0..<iw { d[x] = s[iw - 1 - x] }
                } else {
                    for x in 0..<iw { d[x] = s[x] }
                }
            }
        case .none, .rotate:
            break
        }
    }
}
