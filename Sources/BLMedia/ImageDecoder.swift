import BLCore
import CImageIO

/// Decodes PNG and JPEG frames to 8-bit RGB the way the reference pipeline's Pillow does.
///
/// The format is detected from the bytes (PNG signature, JPEG SOI marker), not the file name.
/// - PNG (libpng): palette, gray (1-16 bit), gray+alpha, RGB, RGBA, interlaced or not. Alpha and
///   tRNS transparency are dropped, 16-bit samples keep their high byte (16-bit gray without alpha
///   clips to 255), gamma and colour profiles are ignored: Pillow's `convert("RGB")`.
/// - JPEG (libjpeg-turbo): libjpeg defaults as Pillow uses them (ISLOW integer IDCT, fancy
///   upsampling); grayscale replicated to RGB; CMYK/YCCK refused; truncated data is an error.
package enum ImageDecoder {
    /// Images above this many pixels are refused before any pixel buffer is allocated.
    package static let maxPixels = 1 << 26

    package enum Format: String, Sendable { case png, jpeg }

    /// The format of `bytes` from their first bytes, or nil.
    package static func detect(_ bytes: UnsafeRawBufferPointer) -> Format? {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, zip(bytes.prefix(8), png).allSatisfy({ $0 == $1 }) { return .png }
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        return nil
    }

    /// Reads and decodes the image file at `path`. Errors name the file.
    package static func decode(path: String) throws -> Image8 {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let e as BLError { throw e.inFile(path) }
        do {
            return try decode(bytes: file.bytes)
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }

    /// Decodes PNG or JPEG bytes held in memory.
    package static func decode(bytes: UnsafeRawBufferPointer) throws -> Image8 {
        guard let format = detect(bytes), let base = bytes.baseAddress else {
            throw BLError(.format, "not a PNG or JPEG image (unrecognised first bytes, \(bytes.count) bytes in all)")
        }
        var img = blc_image()
        let p = base.assumingMemoryBound(to: UInt8.self)
        let code: Int32
        switch format {
        case .png: code = blc_png_decode(p, bytes.count, Int64(maxPixels), &img)
        case .jpeg: code = blc_jpeg_decode(p, bytes.count, Int64(maxPixels), &img)
        }
        defer { blc_image_release(&img) }
        let message = withUnsafeBytes(of: img.message) { raw -> String in
            let chars = raw.bindMemory(to: UInt8.self)
            let end = chars.firstIndex(of: 0) ?? chars.count
            return String(decoding: chars[..<end], as: UTF8.self)
        }
        let name = format == .png ? "PNG" : "JPEG"
        switch Int(code) {
        case Int(BLC_IMAGE_OK):
            break
        case Int(BLC_IMAGE_UNSUPPORTED):
            throw BLError(.unsupported, message.isEmpty ? "unsupported \(name) image" : message)
        case Int(BLC_IMAGE_TOO_LARGE):
            throw BLError(.unsupported, message)
        case Int(BLC_IMAGE_NO_MEMORY):
            throw BLError(.io, message)
        default:
            throw BLError(.format, "corrupt \(name) image: \(message.isEmpty ? "decoding failed" : message)")
        }
        guard let pixels = img.rgb, img.width > 0, img.height > 0 else {
            throw BLError(.format, "\(name) decoder returned no pixels")
        }
        let w = Int(img.width), h = Int(img.height)
        let rgb = Array(UnsafeBufferPointer(start: pixels, count: w * h * 3))
        return Image8(unchecked: w, h, rgb)
    }
}
