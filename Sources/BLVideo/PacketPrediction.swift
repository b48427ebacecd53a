import BLCore
import CFFmpeg

/// The decoded frames' timestamps predicted from the packets alone, for the streams where that
/// provably holds, so that the frame count costs a demux instead of a decode:
///
/// - VP9: every packet (a single frame, or a superframe of several) is split as libavcodec's
///   decoder splits it, and each frame's header says whether it is shown (`show_frame`, or
///   `show_existing_frame`); a packet with one shown frame gives one decoded frame with the
///   packet's timestamp, a packet with none gives none. VP9 frames come out in packet order.
/// - H.264 in the avcC layout: the first packet must start at an IDR picture (the decoder
///   outputs nothing before a recovery point otherwise), every packet must be one whole frame
///   picture (libavcodec's parser reports the picture structure; field-coded streams fall back),
///   no packet may be marked for discarding (edit lists). The decoder then outputs one frame per
///   packet, in presentation order: the sorted packet timestamps, when they are all distinct.
///
/// Anything else (other codecs, missing timestamps, unusual packets) gives nil: count by
/// decoding. A prediction is checked frame by frame when the frames are decoded later
/// (`VideoPipeline.run(expected:)`), so a wrong one is caught rather than giving other frames.
enum PacketPrediction {
    static func timestamps(_ input: VideoInput) throws -> [Int64]? {
        switch input.codecpar.pointee.codec_id {
        case AV_CODEC_ID_VP9: return try vp9(input)
        case AV_CODEC_ID_H264: return try h264(input)
        default: return nil
        }
    }

    private static func vp9(_ input: VideoInput) throws -> [Int64]? {
        let packet = try Packet()
        var out: [Int64] = []
        while try input.readPacket(packet) {
            defer { av_packet_unref(packet.ptr) }
            let p = packet.ptr.pointee
            guard p.size > 0 else { continue }
            guard let data = p.data, p.flags & AV_PKT_FLAG_DISCARD == 0,
                  let shown = vp9ShownFrames(UnsafeBufferPointer(start: data, count: Int(p.size))) else { return nil }
            if shown == 0 { continue }
            guard shown == 1, p.pts != FF.noPTS else { return nil }
            out.append(p.pts)
        }
        return out
    }

    /// How many frames of a VP9 packet are shown, or nil when it does not parse.
    static func vp9ShownFrames(_ data: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let last = data.last else { return nil }
        var frames: [UnsafeBufferPointer<UInt8>] = []
        if last & 0xE0 == 0xC0 {
            let count = Int(last & 7) + 1
            let mag = Int((last >> 3) & 3) + 1
            let indexSize = 2 + mag * count
            if data.count >= indexSize && data[data.count - indexSize] == last {
                var offset = 0
                var pos = data.count - indexSize + 1
                for _ in 0..<count {
                    var size = 0
                    for k in 0..<mag { size |= Int(data[pos + k]) << (8 * k) }
                    pos += mag
                    guard size > 0, offset + size <= data.count - indexSize else { return nil }
                    frames.append(UnsafeBufferPointer(rebasing: data[offset..<(offset + size)]))
                    offset += size
                }
            } else {
                frames = [data]
            }
        } else {
            frames = [data]
        }
        var shown = 0
        for f in frames {
            guard let first = f.first, first >> 6 == 2 else { return nil }  // frame_marker
            // frame_marker(2) profile_low_bit profile_high_bit [reserved_zero if profile 3]
            // show_existing_frame ... frame_type show_frame: all in the first byte.
            let profile = Int((first >> 5) & 1) | (Int((first >> 4) & 1) << 1)
            let bit = profile == 3 ? 2 : 3
            if (first >> UInt8(bit)) & 1 == 1 {
                shown += 1  // show_existing_frame
            } else {
                shown += Int((first >> UInt8(bit - 2)) & 1)  // show_frame
            }
        }
        return shown
    }

    private static func h264(_ input: VideoInput) throws -> [Int64]? {
        let par = input.codecpar.pointee
        guard let extra = par.extradata, par.extradata_size >= 7, extra[0] == 1 else { return nil }
        let lengthSize = Int(extra[4] & 3) + 1
        guard let parser = av_parser_init(Int32(AV_CODEC_ID_H264.rawValue)) else { return nil }
        defer { av_parser_close(parser) }
        parser.pointee.flags |= PARSER_FLAG_COMPLETE_FRAMES
        let ctx = try CodecContext(nil)
        guard avcodec_parameters_to_context(ctx.ptr, input.codecpar) >= 0 else { return nil }
        let packet = try Packet()
        var out: [Int64] = []
        var first = true
        while try input.readPacket(packet) {
            defer { av_packet_unref(packet.ptr) }
            let p = packet.ptr.pointee
            guard p.size > 0 else { continue }
            guard let data = p.data, p.flags & AV_PKT_FLAG_DISCARD == 0, p.pts != FF.noPTS else { return nil }
            if first {
                guard firstSliceType(UnsafeBufferPointer(start: data, count: Int(p.size)), lengthSize: lengthSize) == 5 else { return nil }
                first = false
            }
            var outData: UnsafeMutablePointer<UInt8>? = nil
            var outSize: Int32 = 0
            let used = av_parser_parse2(parser, ctx.ptr, &outData, &outSize, data, p.size, p.pts, p.dts, p.pos)
            guard used == p.size, outSize == p.size,
                  parser.pointee.picture_structure == AV_PICTURE_STRUCTURE_FRAME else { return nil }
            out.append(p.pts)
        }
        out.sort()
        for i in out.indices.dropFirst() where out[i] == out[i - 1] { return nil }
        return out
    }

    /// The NAL unit type of the first slice (1 non-IDR, 5 IDR) in a length-prefixed packet.
    static func firstSliceType(_ data: UnsafeBufferPointer<UInt8>, lengthSize: Int) -> Int? {
        var pos = 0
        while pos + lengthSize < data.count {
            var length = 0
            for k in 0..<lengthSize { length = length << 8 | Int(data[pos + k]) }
            pos += lengthSize
            guard length > 0, length <= data.count - pos else { return nil }
            let type = Int(data[pos] & 0x1F)
            if type == 1 || type == 5 { return type }
            pos += length
        }
        return nil
    }
}
