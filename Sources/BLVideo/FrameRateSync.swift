import BLCore
import CFFmpeg

/// ffmpeg 5.1's constant-frame-rate output stage (`-vsync auto`, which is CFR for the image2 and
/// rawvideo muxers): from each filtered frame's timestamp, how many output frames it becomes,
/// and how many extra copies of the previous frame come first. This is what makes the number of
/// files `%05d.jpg` writes differ from the number of decoded frames when timestamps are
/// irregular (duplicates to fill gaps, drops when frames come too close, copies of the first
/// frame when a CFR file's video starts after time 0).
///
/// The arithmetic follows fftools (adjust_frame_pts_to_encoder_tb, do_video_out) in the same
/// floating-point steps, since its rounding decides the counts.
struct FrameRateSync {
    /// What one filtered frame turns into: `previous` more copies of the previous frame, then
    /// `current` copies of this one.
    struct Step: Equatable {
        var previous: Int
        var current: Int
    }

    let mode: SyncMode
    let filterTimeBase: AVRational
    /// The encoder's time base: 1 / the output frame rate (the input's guessed rate, 25 fps
    /// when it has none).
    let encoderTimeBase: AVRational
    /// How many encoder ticks one frame lasts before clipping (1, or 0 when the rate is unknown).
    let duration: Double
    let maxFrames: Int
    let path: String

    private var syncOpts: Int64 = 0
    private(set) var framesOut: Int64 = 0
    private var lastNb0: (Int64, Int64, Int64) = (0, 0, 0)
    private var haveLast = false

    /// ffmpeg refuses to duplicate a frame more often than this (dts_error_threshold * 30).
    static let duplicationLimit: Int64 = 3600 * 30 * 30

    init(mode: SyncMode, filterTimeBase: AVRational, frameRate: AVRational, maxFrames: Int, path: String) {
        self.mode = mode
        self.filterTimeBase = filterTimeBase
        self.maxFrames = maxFrames
        self.path = path
        // The buffer source gets the guessed rate only when it is valid; the output rate falls
        // back to 25/1.
        let filterRate = frameRate.num != 0 && frameRate.den != 0 ? frameRate : AVRational(num: 0, den: 1)
        let outputRate = filterRate.num != 0 ? filterRate : AVRational(num: 25, den: 1)
        encoderTimeBase = AVRational(num: outputRate.den, den: outputRate.num)
        let tb = Double(encoderTimeBase.num) / Double(encoderTimeBase.den)
        var d = 0.0
        if filterRate.num > 0 && filterRate.den > 0 {
            d = 1 / (Double(filterRate.num) / Double(filterRate.den) * tb)
        }
        d = min(d, 1 / (Double(outputRate.num) / Double(outputRate.den) * tb))
        duration = d
    }

    /// The frame's timestamp in encoder ticks as ffmpeg computes it (16 extra bits, nudged off
    /// exact midpoints).
    func exactTimestamp(_ pts: Int64) -> Double {
        guard pts != FF.noPTS else { return Double(FF.noPTS) }
        var tb = encoderTimeBase
        let extraBits = min(max(29 - Self.log2(UInt32(truncatingIfNeeded: tb.den)), 0), 16)
        tb.den <<= Int32(extraBits)
        var t = Double(av_rescale_q(pts, filterTimeBase, tb))
        t /= Double(1 << extraBits)
        t += Double(t > 0 ? 1 : -1) * 1.0 / Double(1 << 17)
        return t
    }

    /// One filtered frame with timestamp `pts` (stream time base), or `nil` for the end of the
    /// stream (repeats of the last frame, as ffmpeg's flush gives them).
    mutating func step(_ pts: Int64?) throws -> Step {
        var nb: Int64, nb0: Int64
        if let pts {
            var syncIpts = exactTimestamp(pts)
            guard syncIpts.magnitude < 9e18 || pts == FF.noPTS else { throw tooFar(pts) }
            var duration = self.duration
            var delta0 = syncIpts - Double(syncOpts)
            var delta = delta0 + duration
            nb0 = 0
            nb = 1
            if delta0 < 0 && delta > 0 {
                syncIpts = Double(syncOpts)
                duration += delta0
                delta0 = 0
            }
            if mode == .vscfr && framesOut == 0 && delta0 >= 0.5 {
                delta = duration
                delta0 = 0
                syncOpts = Int64(syncIpts.rounded(.toNearestOrEven))
            }
            if delta < -1.1 {
                nb = 0
            } else if delta > 1.1 {
                guard delta < Double(Self.duplicationLimit) + 2 else { throw tooFar(pts) }
                nb = Int64(Float(delta).rounded(.toNearestOrEven))
                if delta0 > 1.1 { nb0 = Int64(Float(delta0 - 0.6).rounded(.toNearestOrEven)) }
            }
        } else {
            let (a, b, c) = lastNb0
            nb = max(min(a, b), min(max(a, b), c))
            nb0 = nb
        }
        nb0 = min(nb0, nb)
        lastNb0 = (nb0, lastNb0.0, lastNb0.1)
        if nb > Self.duplicationLimit { throw tooFar(pts ?? 0) }
        if framesOut + nb > Int64(maxFrames) {
            throw BLError(.unsupported, "the video gives more than \(maxFrames) frames", file: path)
        }
        let previous = haveLast ? nb0 : 0
        let current = pts == nil ? 0 : nb - previous
        syncOpts += previous + current
        framesOut += previous + current
        haveLast = pts != nil
        return Step(previous: Int(previous), current: Int(current))
    }

    private func tooFar(_ pts: Int64) -> BLError {
        BLError(.format, "frame timestamp \(pts) (time base \(filterTimeBase.text)) is too far from the previous frames; ffmpeg would skip or repeat frames millions of times", file: path)
    }

    /// av_log2: the index of the highest set bit (0 for 0).
    static func log2(_ v: UInt32) -> Int { v == 0 ? 0 : 31 - v.leadingZeroBitCount }
}
