import BLCore
import CFFmpeg

/// Decoded frames of the chosen stream, in presentation order, with the timestamps and sample
/// aspect ratio ffmpeg gives them before filtering: `pts` is the decoder's best-effort timestamp
/// (from packets already shifted to start at 0), the stream's aspect ratio replaces the frame's
/// when the container sets one.
///
/// Decoding is strict: where ffmpeg logs a decoding error and carries on, this throws, so a
/// damaged file gives an error instead of frames that differ from an intact file's.
final class FrameDecoder {
    let input: VideoInput
    private let codec: CodecContext
    private let messages: UnsafeMutablePointer<blv_messages>
    private let packet: Packet
    private var draining = false
    private var finished = false
    private var packetsWithoutFrame = 0
    /// Frames returned so far.
    private(set) var framesDecoded = 0

    /// Packets in a row that may give no frame before the stream is taken as broken.
    static let packetLimitWithoutFrame = 4096

    init(input: VideoInput, options: VideoOptions) throws {
        self.input = input
        messages = .allocate(capacity: 1)
        messages.initialize(to: blv_messages())
        do {
            codec = try input.openDecoder(options: options, messages: messages)
            packet = try Packet()
        } catch {
            messages.deallocate()
            throw error
        }
    }

    deinit {
        // The codec context outlives this deinit; it must no longer point at the record.
        codec.ptr.pointee.opaque = nil
        messages.deinitialize(count: 1)
        messages.deallocate()
    }

    var path: String { input.path }

    private func failure(_ what: String, _ code: Int32) -> BLError {
        BLError(.format, FF.describe(what, code, messages), file: input.path,
                location: "after \(framesDecoded) decoded frames, packet \(input.packetsRead)")
    }

    /// Decodes the next frame into `frame`; false at the end of the stream.
    func next(into frame: Frame) throws -> Bool {
        guard !finished else { return false }
        let ctx = codec.ptr
        while true {
            let r = avcodec_receive_frame(ctx, frame.ptr)
            if r >= 0 {
                try accept(frame)
                return true
            }
            if r == FF.eof {
                finished = true
                return false
            }
            guard r == FF.again else { throw failure("cannot decode \(input.codecName)", r) }
            guard !draining else {
                finished = true
                return false
            }
            try input.checkTimeout("decoding frame \(framesDecoded + 1)")
            if try !input.readPacket(packet) {
                draining = true
                let s = avcodec_send_packet(ctx, nil)
                if s < 0 && s != FF.eof { throw failure("cannot finish decoding \(input.codecName)", s) }
                continue
            }
            // ffmpeg skips empty packets before the end of the stream.
            if packet.ptr.pointee.size == 0 {
                av_packet_unref(packet.ptr)
                continue
            }
            packetsWithoutFrame += 1
            if packetsWithoutFrame > Self.packetLimitWithoutFrame {
                throw BLError(.format, "\(Self.packetLimitWithoutFrame) packets in a row decode to no frame", file: input.path,
                              location: "after \(framesDecoded) decoded frames, packet \(input.packetsRead)")
            }
            let s = avcodec_send_packet(ctx, packet.ptr)
            av_packet_unref(packet.ptr)
            if s < 0 && s != FF.eof { throw failure("cannot decode \(input.codecName) packet \(input.packetsRead)", s) }
        }
    }

    private func accept(_ frame: Frame) throws {
        let f = frame.ptr
        packetsWithoutFrame = 0
        framesDecoded += 1
        if f.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0 || f.pointee.decode_error_flags != 0 {
            throw BLError(.format, "decoded frame \(framesDecoded) is damaged (the \(input.codecName) data is corrupt or incomplete)",
                          file: input.path, location: "packet \(input.packetsRead)")
        }
        let best = f.pointee.best_effort_timestamp
        if best != FF.noPTS { f.pointee.pts = best }
        let sar = input.stream.pointee.sample_aspect_ratio
        if sar.num != 0 { f.pointee.sample_aspect_ratio = sar }
        let w = Int(f.pointee.width), h = Int(f.pointee.height)
        guard w > 0, h > 0 else {
            throw BLError(.format, "decoded frame \(framesDecoded) is empty (\(w)x\(h))", file: input.path)
        }
    }
}
