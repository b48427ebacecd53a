import BLCore
import BLMedia
import Foundation

/// An 8-bit RGB picture, pixels interleaved row-major: channel `c` (0 red, 1 green, 2 blue) of
/// column `x`, row `y` is `pixels[(y * width + x) * 3 + c]`, as Pillow holds an image in mode "RGB".
public struct RGBImage: Sendable, Equatable {
    public var width: Int { image.width }
    public var height: Int { image.height }
    /// `width * height * 3` bytes.
    public var pixels: [UInt8] { image.rgb }

    package let image: Image8

    /// A picture from its pixels; `pixels` must hold exactly `width * height * 3` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(BLConvertError) {
        image = try bridged { try Image8(width: width, height: height, rgb: pixels) }
    }

    /// Decodes a PNG or JPEG file (any colour type, converted to RGB as Pillow's `convert("RGB")`).
    public init(contentsOf url: URL) throws(BLConvertError) {
        let path = url.path
        image = try bridged {
            do { return try ImageDecoder.decode(path: path) } catch let e as BLError { throw e.inFile(path) }
        }
    }

    package init(_ image: Image8) { self.image = image }
}
