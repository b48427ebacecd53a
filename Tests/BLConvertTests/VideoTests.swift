import Foundation
import Testing
import BLCore
import BLMedia
@testable import BLVideo

/// The eval-mini videos (VP9 WebM and H.264 MP4, one portrait) and what the reference ffmpeg
/// 5.1 wrote for them.
enum EvalMini {
    static let root: String? = TestData.sharedRoot.map { $0 + "/eval-mini" }
    static let names = ["v001", "v002", "v003", "v004", "v005", "v006"]

    static func video(_ name: String) -> String {
        let dir = (root ?? "") + "/videos/"
        return FileManager.default.fileExists(atPath: dir + name + ".webm") ? dir + name + ".webm" : dir + name + ".mp4"
    }

    /// `decoded_rgb24` of reference.json: width, height, per-frame sha256.
    static func decoded() throws -> [String: (width: Int, height: Int, sha256: [String])] {
        let root = try #require(root)
        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: root + "/reference.json"))))
        var out: [String: (Int, Int, [String])] = [:]
        for (name, v) in try #require(json["decoded_rgb24"]?.objectValue) {
            let hashes = try #require(v["sha256"]?.arrayValue).compactMap(\.stringValue)
            out[name] = (try #require(v["width"]?.intValue), try #require(v["height"]?.intValue), hashes)
        }
        return out
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    var h = SHA256()
    h.update(bytes)
    return SHA256.hexString(h.finalize())
}

@Suite struct VideoTests {
    /// Every frame of every eval-mini video, bit for bit what
    /// `ffmpeg -i V -vf scale=... -f rawvideo -pix_fmt rgb24 -` wrote.
    @Test(.enabled(if: TestData.sharedRoot != nil)) func everyDecodedFrameMatchesTheReference() throws {
        let reference = try EvalMini.decoded()
        #expect(reference.count == EvalMini.names.count)
        for name in EvalMini.names {
            let ref = try #require(reference[name])
            var hashes: [String] = []
            let info = try VideoFrames.forEachFrame(EvalMini.video(name)) { i, image in
                #expect(i == hashes.count + 1)
                #expect(image.width == ref.width && image.height == ref.height, "\(name) frame \(i)")
                hashes.append(sha256Hex(image.rgb))
            }
            #expect(hashes.count == ref.sha256.count, "\(name)")
            let bad = zip(hashes, ref.sha256).enumerated().filter { $0.element.0 != $0.element.1 }.map { $0.offset + 1 }
            #expect(bad.isEmpty, "\(name): frames \(bad) differ")
            #expect(info.frames == ref.sha256.count && info.width == ref.width && info.height == ref.height)
        }
    }
}
