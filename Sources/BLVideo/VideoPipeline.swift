import BLCore
import CFFmpeg

/// The reference extraction's path from file to output frames, stage by stage as ffmpeg 5.1
/// runs `ffmpeg -i V -vf scale=... OUT`: demux, decode, automatic rotation, the scale filter
/// (resize and conversion in one libswscale pass), the constant-frame-rate stage that numbers
/// the output frames.
///
/// Output frames are numbered from 1 as the extraction numbers its files. The frames of one
/// decoded frame form a contiguous run of numbers (its own copies, then the copies the next
/// frame's timing adds), known once the next frame is decoded; so at most two decoded frames are
/// held, whatever the video's length. A frame's pixels are oriented and scaled only when one of
/// its numbers is wanted; every frame still advances the scale filter's state, as in ffmpeg.
final class VideoPipeline {
    let input: VideoInput
    let decoder: FrameDecoder
    let scale: ScaleStage
    private(set) var sync: FrameRateSync
    let options: VideoOptions
    /// Decided by the first frame.
    private(set) var orientation: Orientation?
    private var firstMatrix: [Int32]?

    /// A stage that predicted the decoded frames' timestamps disagrees with the decoder.
    struct PredictionMismatch: Error {
        var frame: Int
    }

    init(path: String, options: VideoOptions, target: ScaleStage.Target) throws {
        guard options.shortSide > 0, options.shortSide <= options.maxSide else {
            throw BLError(.invalidArgument, "short side \(options.shortSide) is outside 1...\(options.maxSide)", file: path)
        }
        self.options = options
        input = try VideoInput(path: path, options: options)
        decoder = try FrameDecoder(input: input, options: options)
        let par = input.codecpar.pointee
        scale = ScaleStage(target: target, shortSide: options.shortSide, codedWidth: par.width, codedHeight: par.height,
                           maxSide: options.maxSide, path: path)
        sync = FrameRateSync(mode: input.syncMode, filterTimeBase: input.timeBase, frameRate: input.frameRate,
                             maxFrames: options.maxFrames, path: path)
    }

    var path: String { input.path }

    /// Runs the video through.
    /// - `wanted(n)`: whether output frame n's pixels are needed.
    /// - `stopAfter`: stop once output frames 1...stopAfter are out (nil: to the end).
    /// - `expected`: predicted timestamps of the decoded frames; a difference throws
    ///   `PredictionMismatch`.
    /// - `emit(n, frame)`: every output frame in order, with the filtered frame when wanted.
    /// Returns the number of output frames (the total when the end was reached).
    @discardableResult
    func run(wanted: (Int) -> Bool, stopAfter: Int? = nil, expected: [Int64]? = nil,
             emit: (Int, Frame?) throws -> Void) throws -> Int {
        var next = 1
        var pending: (frame: Frame, props: ScaleStage.Props, own: Int)? = nil
        let orientationSource = blv_stream_display_matrix(input.stream)

        func finish(_ p: (frame: Frame, props: ScaleStage.Props, own: Int), extra: Int) throws {
            let count = p.own + extra
            let numbers = next..<(next + count)
            let needed = numbers.contains(where: wanted)
            let orientation = self.orientation ?? .none
            let out = try scale.process(p.props, pixels: needed ? { try orientation.apply(p.frame, path: self.path) } : nil)
            for n in numbers { try emit(n, needed && wanted(n) ? out : nil) }
            next += count
        }

        do {
            while true {
                let frame = try Frame()
                guard try decoder.next(into: frame) else {
                    let step = try sync.step(nil)
                    if let p = pending { try finish(p, extra: step.previous) }
                    break
                }
                let index = decoder.framesDecoded - 1
                if let expected, index >= expected.count || expected[index] != frame.ptr.pointee.pts {
                    throw PredictionMismatch(frame: index + 1)
                }
                try checkOrientation(frame, streamMatrix: orientationSource)
                let step = try sync.step(frame.ptr.pointee.pts)
                if let p = pending { try finish(p, extra: step.previous) }
                pending = (frame, ScaleStage.Props(frame, orientation: orientation ?? .none), step.current)
                if let stopAfter, next > stopAfter { return next - 1 }
            }
        } catch let e as BLError {
            throw e.inFile(path).reached(next - 1)
        }
        if let expected, decoder.framesDecoded != expected.count {
            throw PredictionMismatch(frame: decoder.framesDecoded + 1)
        }
        guard next > 1 else {
            throw BLError(.format, "the video stream gives no frames (\(decoder.framesDecoded) decoded)", file: path)
        }
        return next - 1
    }

    /// The first frame decides the rotation; a later frame with another display matrix would
    /// make ffmpeg rebuild its filters, which is not reproduced.
    private func checkOrientation(_ frame: Frame, streamMatrix: UnsafePointer<Int32>?) throws {
        let own = blv_frame_display_matrix(frame.ptr).map { Array(UnsafeBufferPointer(start: $0, count: 9)) }
        guard let orientation else {
            firstMatrix = own
            let o = own.map { m in m.withUnsafeBufferPointer { Orientation(displayMatrix: $0.baseAddress) } }
                ?? Orientation(displayMatrix: streamMatrix)
            if case .rotate(let theta) = o {
                throw BLError(.unsupported, "the video is displayed rotated by \(theta) degrees; ffmpeg's rotate filter for angles other than multiples of 90 is not reproduced", file: path)
            }
            self.orientation = o
            return
        }
        _ = orientation
        if own != firstMatrix {
            throw BLError(.unsupported, "the display rotation changes at frame \(decoder.framesDecoded); ffmpeg would rebuild its filters there, which is not reproduced", file: path)
        }
    }

    /// Width and height of the output frames (known after the first frame).
    var outputSize: (width: Int, height: Int) { (Int(scale.outputWidth), Int(scale.outputHeight)) }
}

extension BLError {
    /// The same error, saying how far the extraction got (unless it already says where).
    func reached(_ frames: Int) -> BLError {
        var e = self
        let note = "reached frame \(frames)"
        e.location = e.location.map { "\($0), \(note)" } ?? note
        return e
    }
}
