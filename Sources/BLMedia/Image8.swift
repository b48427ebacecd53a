import BLCore

/// An 8-bit RGB image, pixels interleaved row-major: the byte of channel `c` (0 = R, 1 = G, 2 = B)
/// at column `x`, row `y` is `rgb[(y * width + x) * 3 + c]`. This is what Pillow holds for an
/// image in mode "RGB".
package struct Image8: Sendable, Equatable {
    package var width: Int
    package var height: Int
    package var rgb: [UInt8]

    /// An image of the given size; `rgb` must hold `width * height * 3` bytes.
    package init(width: Int, height: Int, rgb: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw BLError(.invalidArgument, "image size \(width)x\(height) is empty")
        }
        let (n, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, n <= Int.max / 3, rgb.count == n * 3 else {
            throw BLError(.invalidArgument, "\(rgb.count) bytes do not make a \(width)x\(height) RGB image")
        }
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    /// Width, height and bytes are trusted (internal constructors that computed them).
    init(unchecked width: Int, _ height: Int, _ rgb: [UInt8]) {
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    /// True when the size is positive and `rgb` holds exactly `width * height * 3` bytes.
    package var isConsistent: Bool {
        guard width > 0, height > 0 else { return false }
        let (n, o) = width.multipliedReportingOverflow(by: height)
        return !o && n <= Int.max / 3 && rgb.count == n * 3
    }

    /// The `w`x`h` region whose top-left corner is (`left`, `top`), as Pillow's `crop`; parts
    /// outside the image are zero (black), as Pillow fills them. Empty (0 x 0) for a non-positive
    /// size or an inconsistent image.
    package func cropped(left: Int, top: Int, width w: Int, height h: Int) -> Image8 {
        guard w > 0, h > 0, isConsistent else { return Image8(unchecked: 0, 0, []) }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        let x0 = max(left, 0), x1 = min(left + w, width)
        out.withUnsafeMutableBufferPointer { dst in
            rgb.withUnsafeBufferPointer { src in
                guard x0 < x1 else { return }
                for y in max(top, 0)..<min(top + h, height) {
                    let s = (y * width + x0) * 3
                    let d = ((y - top) * w + (x0 - left)) * 3
                    for i in 0..<((x1 - x0) * 3) { dst[d + i] = src[s + i] }
                }
            }
        }
        return Image8(unchecked: w, h, out)
    }
}
