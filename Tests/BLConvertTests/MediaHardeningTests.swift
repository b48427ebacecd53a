import CImageIO
import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLMedia

/// A progressive JPEG written by libjpeg here (the library's own encoder, `jpeg_simple_progression`).
func progressiveJPEG(width: Int, height: Int) -> [UInt8] {
    var cinfo = jpeg_compress_struct()
    var jerr = jpeg_error_mgr()
    var buffer: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    return withUnsafeMutablePointer(to: &jerr) { e -> [UInt8] in
        cinfo.err = jpeg_std_error(e)
        jpeg_CreateCompress(&cinfo, JPEG_LIB_VERSION, MemoryLayout<jpeg_compress_struct>.size)
        jpeg_mem_dest(&cinfo, &buffer, &size)
        cinfo.image_width = JDIMENSION(width)
        cinfo.image_height = JDIMENSION(height)
        cinfo.input_components = 3
        cinfo.in_color_space = JCS_RGB
        jpeg_set_defaults(&cinfo)
        jpeg_simple_progression(&cinfo)
        jpeg_start_compress(&cinfo, 1)
        var row = [UInt8](repeating: 0, count: width * 3)
        while cinfo.next_scanline < cinfo.image_height {
            let y = Int(cinfo.next_scanline)
            for x in 0..<width { row[x * 3] = UInt8((x * 5) & 0xff); row[x * 3 + 1] = UInt8((y * 3) & 0xff); row[x * 3 + 2] = UInt8((x ^ y) & 0xff) }
            row.withUnsafeMutableBufferPointer { p in
                var r: JSAMPROW? = p.baseAddress
                _ = jpeg_write_scanlines(&cinfo, &r, 1)
            }
        }
        jpeg_finish_compress(&cinfo)
        jpeg_destroy_compress(&cinfo)
        let out = Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
        free(buffer)
        return out
    }
}

@Suite struct MediaHardeningTests {
    static func decode(_ b: [UInt8]) throws -> Image8 { try b.withUnsafeBytes { try ImageDecoder.decode(bytes: $0) } }

    @Test func repeatedProgressiveScansAreBounded() throws {
        let jpeg = progressiveJPEG(width: 512, height: 512)
        let img = try Self.decode(jpeg)
        #expect(img.width == 512 && img.height == 512)
        // The last scan (from its SOS marker to EOI) repeated 400 times.
        let sos = (0..<(jpeg.count - 1)).filter { jpeg[$0] == 0xff && jpeg[$0 + 1] == 0xda }
        let last = try #require(sos.last)
        let scan = Array(jpeg[last..<(jpeg.count - 2)])
        let hostile = Array(jpeg[..<last]) + Array(Array(repeating: scan, count: 400).joined()) + [0xff, 0xd9]
        let start = MonotonicClock.seconds()
        let e = try #require(throws: BLError.self) { _ = try Self.decode(hostile) }
        #expect(e.message.contains("warnings") || e.message.contains("scans"), "\(e)")
        #expect(MonotonicClock.seconds() - start < 3, "\(MonotonicClock.seconds() - start) s")
    }

    @Test func aFewWarningsAreStillDecoded() throws {
        // Two stray bytes before a marker: one libjpeg warning ("extraneous bytes"), decoded as before.
        let jpeg = progressiveJPEG(width: 64, height: 48)
        let sos = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xff && jpeg[$0 + 1] == 0xda })
        let damaged = Array(jpeg[..<sos]) + [0x12, 0x34] + Array(jpeg[sos...])
        #expect(try Self.decode(damaged) == Self.decode(jpeg))
    }
}
