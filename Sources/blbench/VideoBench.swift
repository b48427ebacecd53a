import BLVideo
import Foundation

/// `--video FILE`: decode + scale throughput of BLVideo on that file (every output frame to RGB24
/// at short side 256, as `ffmpeg -threads 1 -i FILE -vf scale=-1:256 -f rawvideo -pix_fmt rgb24`
/// does), one decoder thread, and the frame count from packets and by decoding.
@MainActor func videoCases(_ files: [String]) throws {
    for (i, file) in files.enumerated() {
        let name = "video\(i + 1)_" + (file.split(separator: "/").last.map(String.init) ?? file)
        var frames = 0, size = ""
        try measure(name, "", flops: 0) {
            let info = try VideoFrames.forEachFrame(file) { _, _ in }
            frames = info.frames
            size = "\(info.codec) \(info.codedWidth)x\(info.codedHeight) -> \(info.width)x\(info.height)"
        }
        guard var r = results.last, r.name == name else { continue }
        r.detail = "\(frames) frames, \(size): \(String(format: "%.0f", Double(frames) / r.median)) frames/s"
        results[results.count - 1] = r
        try measure(name + "_count_packets", "frame count from packets", flops: 0) {
            _ = try VideoFrames.count(file)
        }
        try measure(name + "_count_decoding", "frame count by decoding (no scaling)", flops: 0) {
            _ = try VideoFrames.count(file, method: .decoding)
        }
    }
}
