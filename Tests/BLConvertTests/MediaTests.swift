import Foundation
import Testing
@testable import BLCore
@testable import BLMedia
import BLSafetensors
import BLTestSupport

/// Reference tensors of the frames-mini case (`preprocessed.safetensors`).
private enum FramesMini {
    static let root = TestData.sharedIfPresent("frames-mini")

    static func tensor(_ name: String) throws -> Tensor? {
        guard let root else { return nil }
        let path = root + "/preprocessed.safetensors"
        guard FileManager.default.fileExists(atPath: path) else {
            TestData.skipNote("\(path) not found"); return nil
        }
        let file = try SafetensorsFile.load(path: path)
        guard let t = file.tensor(name) else {
            Issue.record("\(path) has no tensor '\(name)'"); return nil
        }
        return t
    }
}

@Suite struct MediaTests {
    // MARK: frame sampling

    @Test func samplingMatchesFixtureManifest() throws {
        let p = Preprocessing(frames: 8)
        #expect(p.sampleIndices(frameCount: 37) == [3, 7, 12, 17, 21, 26, 31, 35])
        if let t = try FramesMini.tensor("indices") {
            #expect(p.sampleIndices(frameCount: 37) == t.int64s().map(Int.init))
        }
    }

    @Test func samplingShortVideosFollowsNumpySeededChoice() {
        // Values printed by NumPy 2.4.6: np.random.seed(0); np.sort(np.random.choice(n, 8)) + 1,
        // the branch the reference takes when a video has no more frames than T.
        let expected: [Int: [Int]] = [
            1: [1, 1, 1, 1, 1, 1, 1, 1],
            2: [1, 1, 2, 2, 2, 2, 2, 2],
            3: [1, 1, 1, 2, 2, 2, 3, 3],
            5: [1, 2, 3, 4, 4, 4, 4, 5],
            7: [1, 2, 4, 4, 4, 4, 5, 6],
            8: [1, 4, 4, 4, 5, 6, 8, 8],
        ]
        let p = Preprocessing(frames: 8)
        for (n, e) in expected { #expect(p.sampleIndices(frameCount: n) == e, "frameCount \(n)") }
        // np.random.seed(0); np.random.randint(0, 2**31 - 1, size=3), then randint(0, 1000, size=3)
        var r = NumpyLegacyRandom(seed: 0)
        #expect((0..<3).map { _ in r.randint(2_147_483_647) } == [209_652_396, 398_764_591, 924_231_285])
        #expect((0..<3).map { _ in r.randint(1000) } == [192, 835, 763])
    }

    // MARK: reference pipeline on frames-mini

    /// Inverts the reference normalisation back to the uint8 pixel (the 256 values per channel are distinct).
    static func referencePixels(_ t: Tensor, _ p: Preprocessing) -> [UInt8]? {
        let tables = p.normalizationTables()
        let lookups = tables.map { table in Dictionary(uniqueKeysWithValues: table.enumerated().map { ($1.bitPattern, UInt8($0)) }) }
        let values = t.floats()
        let plane = p.crop * p.crop
        var out = [UInt8](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            guard let u = lookups[(i / plane) % 3][v.bitPattern] else { return nil }
            out[i] = u
        }
        return out
    }

    static func ourPixels(_ t: Tensor, _ p: Preprocessing) -> [UInt8] {
        let tables = p.normalizationTables()
        let lookups = tables.map { table in Dictionary(uniqueKeysWithValues: table.enumerated().map { ($1.bitPattern, UInt8($0)) }) }
        let plane = p.crop * p.crop
        return t.floats().enumerated().map { lookups[($0.offset / plane) % 3][$0.element.bitPattern] ?? 0 }
    }

    func compare(folder: String, scale: Int, reference name: String) throws -> (maxAbs: Float, identical: Double, maxPixel: Int)? {
        guard let root = FramesMini.root, let ref = try FramesMini.tensor(name) else { return nil }
        let p = Preprocessing(frames: 8, scale: scale, crop: 224)
        // Best of 3 runs: the figure to report for preprocessing one 8-frame clip (release build).
        var elapsed = Double.infinity
        var result: (tensor: Tensor, indices: [Int])?
        for _ in 0..<3 {
            let start = Date()
            result = try p.clipTensor(fromFolder: root + "/" + folder)
            elapsed = min(elapsed, Date().timeIntervalSince(start))
        }
        guard let (tensor, indices) = result else { return nil }
        #expect(indices == [3, 7, 12, 17, 21, 26, 31, 35])
        #expect(tensor.shape == [1, 24, 224, 224])
        #expect(ref.shape == tensor.shape)
        let a = tensor.floats(), b = ref.floats()
        guard a.count == b.count else { return nil }
        var maxAbs: Float = 0
        var same = 0
        for i in 0..<a.count {
            let d = abs(a[i] - b[i])
            maxAbs = max(maxAbs, d)
            if a[i].bitPattern == b[i].bitPattern { same += 1 }
        }
        let refPixels = MediaTests.referencePixels(ref, p)
        #expect(refPixels != nil, "reference values are not a normalised uint8 image")
        let ours = MediaTests.ourPixels(tensor, p)
        var maxPixel = 0
        if let refPixels { for i in 0..<ours.count { maxPixel = max(maxPixel, abs(Int(ours[i]) - Int(refPixels[i]))) } }
        print("[media] \(folder) scale \(scale): max |diff| \(maxAbs), identical values \(Double(same) / Double(a.count)), max uint8 diff \(maxPixel), preprocessing \(String(format: "%.1f", elapsed * 1000)) ms")
        return (maxAbs, Double(same) / Double(a.count), maxPixel)
    }

    @Test(.enabled(if: TestData.hasShared)) func pngClipMatchesReferenceScale224() throws {
        let r = try #require(try compare(folder: "frames_png", scale: 224, reference: "input_png_scale224"))
        #expect(r.maxAbs <= 1e-5)
        #expect(r.maxPixel == 0)
        #expect(r.identical == 1.0)
    }

    @Test(.enabled(if: TestData.hasShared)) func pngClipMatchesReferenceScale256() throws {
        let r = try #require(try compare(folder: "frames_png", scale: 256, reference: "input_png_scale256"))
        #expect(r.maxAbs <= 1e-5)
        #expect(r.maxPixel == 0)
        #expect(r.identical == 1.0)
    }

    @Test(.enabled(if: TestData.hasShared)) func jpegClipAgainstReference() throws {
        // libjpeg-turbo 2.1.5 with Pillow's settings (ISLOW IDCT, fancy upsampling) decodes these
        // frames to exactly the pixels the reference's Pillow got: the whole clip is bit-identical.
        let r = try #require(try compare(folder: "frames_jpg", scale: 224, reference: "input_jpg_scale224"))
        #expect(r.maxPixel == 0)
        #expect(r.maxAbs == 0)
        #expect(r.identical == 1.0)
    }
}

// MARK: - resampler

/// A direct double-precision statement of the same filter (triangle kernel, support scaled by
/// the downscale factor, weights normalised per output sample, horizontal pass then vertical,
/// each pass rounding half up to uint8), written from the definition, not from the fixed-point code.
private func oracleResize(_ img: Image8, width: Int, height: Int) -> Image8 {
    oracleResize(img, width: width, height: height, rounded: true).image
}

/// With `rounded: false` (one axis only), `values` holds the unrounded samples.
private func oracleResize(_ img: Image8, width: Int, height: Int, rounded: Bool) -> (image: Image8, values: [Double]) {
    var values = [Double](repeating: 0, count: rounded ? 0 : width * height * 3)
    func weights(_ inSize: Int, _ outSize: Int, _ i: Int) -> [(Int, Double)] {
        let scale = Double(inSize) / Double(outSize)
        let fs = max(scale, 1)
        let center = (Double(i) + 0.5) * scale
        var list: [(Int, Double)] = []
        for j in 0..<inSize {
            let pixelCenter = Double(j) + 0.5
            let w = max(0, 1 - abs(pixelCenter - center) / fs)
            // Pillow reads the window [round(center - support), round(center + support)).
            let lo = Int(center - fs + 0.5), hi = Int(center + fs + 0.5)
            if j >= max(lo, 0), j < min(hi, inSize), w > 0 { list.append((j, w)) }
        }
        let total = list.reduce(0) { $0 + $1.1 }
        return list.map { ($0.0, $0.1 / total) }
    }
    func round8(_ v: Double) -> UInt8 { UInt8(max(0, min(255, (v + 0.5).rounded(.down)))) }
    var mid = img
    if width != img.width {
        var out = [UInt8](repeating: 0, count: width * img.height * 3)
        for x in 0..<width {
            let ws = weights(img.width, width, x)
            for y in 0..<img.height {
                for c in 0..<3 {
                    let s = ws.reduce(0.0) { $0 + Double(img.rgb[(y * img.width + $1.0) * 3 + c]) * $1.1 }
                    out[(y * width + x) * 3 + c] = round8(s)
                    if !rounded { values[(y * width + x) * 3 + c] = s }
                }
            }
        }
        mid = try! Image8(width: width, height: img.height, rgb: out)
    }
    if height != img.height {
        var out = [UInt8](repeating: 0, count: mid.width * height * 3)
        for y in 0..<height {
            let ws = weights(img.height, height, y)
            for x in 0..<mid.width {
                for c in 0..<3 {
                    let s = ws.reduce(0.0) { $0 + Double(mid.rgb[($1.0 * mid.width + x) * 3 + c]) * $1.1 }
                    out[(y * mid.width + x) * 3 + c] = round8(s)
                    if !rounded { values[(y * mid.width + x) * 3 + c] = s }
                }
            }
        }
        mid = try! Image8(width: mid.width, height: height, rgb: out)
    }
    return (mid, values)
}

/// Deterministic pseudo-random bytes (xorshift), so the tests need no seed state.
private func noiseImage(width: Int, height: Int, seed: UInt64) -> Image8 {
    var s = seed | 1
    let bytes = (0..<(width * height * 3)).map { _ -> UInt8 in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return UInt8(truncatingIfNeeded: s >> 32)
    }
    return try! Image8(width: width, height: height, rgb: bytes)
}

@Suite struct MediaResampleTests {
    @Test func identityIsACopy() {
        let img = noiseImage(width: 13, height: 7, seed: 1)
        #expect(PillowResample.resizeBilinear(img, width: 13, height: 7) == img)
    }

    @Test func constantStaysConstant() {
        let img = try! Image8(width: 37, height: 23, rgb: [UInt8](repeating: 0, count: 37 * 23 * 3).enumerated().map { [200, 17, 255][$0.offset % 3] })
        for (w, h) in [(10, 7), (37, 5), (80, 23), (111, 64), (1, 1)] {
            let out = PillowResample.resizeBilinear(img, width: w, height: h)
            #expect(out.width == w && out.height == h)
            #expect(out.rgb.enumerated().allSatisfy { $0.element == [200, 17, 255][$0.offset % 3] }, "\(w)x\(h)")
        }
    }

    @Test func halvingUsesOneThreeThreeOneWeights() {
        // Halving: each interior output reads 4 pixels with weights 1/8, 3/8, 3/8, 1/8.
        let row = PillowResample.resizeBilinear(try! Image8(width: 8, height: 1, rgb: (0..<24).map { UInt8($0 * 10) }), width: 4, height: 1)
        // Red of output 1 reads pixels 1...4 (red 30, 60, 90, 120): (30 + 3*60 + 3*90 + 120) / 8 = 75.
        #expect(row.rgb[3] == 75)
        // Output 0 is clipped at the border: pixels 0...2 with weights 3/4, 3/4, 1/4 renormalised:
        // (3*0 + 3*30 + 60) / 7 = 21.43 -> 21.
        #expect(row.rgb[0] == 21)
    }

    @Test func dyadicDownscalesMatchTheOracleExactly() {
        // Halving and quartering give interior weights that are multiples of 1/8 and 1/32: exact in
        // both double and Pillow's 22-bit fixed point, so interior outputs must agree to the byte.
        // (Border outputs renormalise clipped windows, e.g. by 7/4, and may tie; see the next test.)
        for (iw, ih, ow, oh) in [(16, 10, 8, 5), (32, 16, 8, 4), (40, 40, 20, 10), (33, 16, 33, 4)] {
            let img = noiseImage(width: iw, height: ih, seed: UInt64(iw * 100 + ih))
            let a = PillowResample.resizeBilinear(img, width: ow, height: oh)
            let b = oracleResize(img, width: ow, height: oh)
            let xs = ow == iw ? 0..<ow : 1..<(ow - 1), ys = oh == ih ? 0..<oh : 1..<(oh - 1)
            var differ = 0
            for y in ys { for x in xs { for c in 0..<3 where a.rgb[(y * ow + x) * 3 + c] != b.rgb[(y * ow + x) * 3 + c] { differ += 1 } } }
            #expect(differ == 0, "\(iw)x\(ih)->\(ow)x\(oh)")
        }
    }

    @Test func singlePassDiffersFromTheOracleOnlyAtRoundingTies() {
        // With non-dyadic weights (e.g. multiples of 1/94 for 20 -> 47) a sample can sit exactly on a
        // .5 boundary; double and fixed-point weights then round it either way. Everywhere else the
        // two must agree. One pass at a time, so no intermediate rounding hides a tie.
        for (i, (iw, ih, ow, oh)) in [(20, 3, 47, 3), (37, 5, 16, 5), (320, 4, 298, 4), (3, 31, 3, 20), (4, 240, 4, 224)].enumerated() {
            let img = noiseImage(width: iw, height: ih, seed: UInt64(200 + i))
            let a = PillowResample.resizeBilinear(img, width: ow, height: oh)
            let exact = oracleResize(img, width: ow, height: oh, rounded: false)
            var ties = 0, mismatches = 0
            for (k, x) in a.rgb.enumerated() {
                let v = exact.values[k]
                let nearTie = abs(v - v.rounded(.down) - 0.5) < 1e-4
                if nearTie { ties += 1 }
                let expected = UInt8(max(0, min(255, (v + 0.5).rounded(.down))))
                if x != expected {
                    mismatches += 1
                    #expect(nearTie && abs(Int(x) - Int(expected)) == 1, "\(iw)x\(ih)->\(ow)x\(oh) sample \(k): \(x) vs \(v)")
                }
            }
            #expect(mismatches <= ties)
        }
    }

    @Test func twoPassStaysWithinOneOfTheOracle() {
        var exact = 0, total = 0, worst = 0
        for (i, (iw, ih, ow, oh)) in [(37, 29, 16, 11), (20, 20, 47, 33), (64, 48, 29, 22), (320, 240, 298, 224), (320, 240, 341, 256)].enumerated() {
            let img = noiseImage(width: iw, height: ih, seed: UInt64(100 + i))
            let a = PillowResample.resizeBilinear(img, width: ow, height: oh)
            let b = oracleResize(img, width: ow, height: oh)
            #expect(a.width == ow && a.height == oh)
            for (x, y) in zip(a.rgb, b.rgb) {
                total += 1
                if x == y { exact += 1 }
                worst = max(worst, abs(Int(x) - Int(y)))
            }
        }
        // Ties (about 1 in 100 samples for these ratios) may round either way in the first pass.
        #expect(worst <= 1)
        #expect(Double(exact) / Double(total) > 0.97)
    }

    @Test func upscaleTapsAreTheTriangle() {
        // Doubling: support 1. Output 1 has its centre at 0.75 in source units; source pixel centres
        // 0.5 and 1.5 lie 0.25 and 0.75 away -> weights 3/4, 1/4.
        let t = PillowResample.doubleTaps(inSize: 4, in0: 0, in1: 4, outSize: 8)
        #expect(t.first[1] == 0 && t.count[1] == 2)
        #expect(t.weights[1 * t.taps] == 0.75 && t.weights[1 * t.taps + 1] == 0.25)
        // Output 2, centre 1.25: distances 0.75, 0.25 -> weights 1/4, 3/4.
        #expect(t.first[2] == 0 && t.count[2] == 2)
        #expect(t.weights[2 * t.taps] == 0.25 && t.weights[2 * t.taps + 1] == 0.75)
    }
}

// MARK: - decoding

/// Writes minimal PNG files by hand (stored, uncompressed deflate blocks), so every colour type
/// can be tested with pixels known by construction.
enum PNGWriter {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xedb8_8320 : c >> 1 }
        }
        return c ^ 0xffff_ffff
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, data.count - i)
            let last: UInt8 = i + n == data.count ? 1 : 0
            out += [last, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
            out += data[i..<(i + n)]
            i += n
        } while i < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return out + be32(b << 16 | a)
    }

    /// An 8-bit RGB image Adam7-interlaced: the seven passes' sub-images, each row with a filter byte.
    static func interlacedRGB(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        var raw: [UInt8] = []
        for (x0, y0, dx, dy) in passes {
            let xs = Array(stride(from: x0, to: width, by: dx)), ys = Array(stride(from: y0, to: height, by: dy))
            if xs.isEmpty || ys.isEmpty { continue }
            for y in ys {
                raw.append(0)
                for x in xs { raw += rgb[((y * width + x) * 3)..<((y * width + x) * 3 + 3)] }
            }
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 1])
        out += chunk("IDAT", zlibStored(raw))
        out += chunk("IEND", [])
        return out
    }

    /// `rows` are the packed scanlines without filter bytes.
    static func png(width: Int, height: Int, depth: UInt8, colorType: UInt8, rows: [[UInt8]],
                    palette: [UInt8]? = nil, trns: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [depth, colorType, 0, 0, 0])
        if let palette { out += chunk("PLTE", palette) }
        if let trns { out += chunk("tRNS", trns) }
        out += chunk("IDAT", zlibStored(rows.flatMap { [0] + $0 }))
        out += chunk("IEND", [])
        return out
    }
}

private func decodeBytes(_ bytes: [UInt8]) throws -> Image8 {
    try bytes.withUnsafeBytes { try ImageDecoder.decode(bytes: $0) }
}

private func gray(_ values: [UInt8]) -> [UInt8] { values.flatMap { [$0, $0, $0] } }

@Suite struct MediaDecodeTests {
    @Test func pngColourTypesConvertAsPillowDoes() throws {
        // RGB 8-bit: unchanged.
        let rgb: [UInt8] = [1, 2, 3, 250, 251, 252, 7, 8, 9, 100, 110, 120]
        var img = try decodeBytes(PNGWriter.png(width: 2, height: 2, depth: 8, colorType: 2, rows: [Array(rgb[0..<6]), Array(rgb[6..<12])]))
        #expect(img.width == 2 && img.height == 2 && img.rgb == rgb)

        // RGBA: alpha dropped, colour kept as stored (no compositing).
        img = try decodeBytes(PNGWriter.png(width: 2, height: 1, depth: 8, colorType: 6, rows: [[10, 20, 30, 0, 40, 50, 60, 128]]))
        #expect(img.rgb == [10, 20, 30, 40, 50, 60])

        // Gray 8-bit: replicated.
        img = try decodeBytes(PNGWriter.png(width: 3, height: 1, depth: 8, colorType: 0, rows: [[0, 77, 255]]))
        #expect(img.rgb == gray([0, 77, 255]))

        // Gray + alpha: alpha dropped.
        img = try decodeBytes(PNGWriter.png(width: 2, height: 1, depth: 8, colorType: 4, rows: [[90, 0, 200, 255]]))
        #expect(img.rgb == gray([90, 200]))

        // Gray 1/2/4-bit: scaled to 0...255 (1-bit -> 0/255, 2-bit -> x85, 4-bit -> x17).
        img = try decodeBytes(PNGWriter.png(width: 8, height: 1, depth: 1, colorType: 0, rows: [[0b1011_0001]]))
        #expect(img.rgb == gray([255, 0, 255, 255, 0, 0, 0, 255]))
        img = try decodeBytes(PNGWriter.png(width: 4, height: 1, depth: 2, colorType: 0, rows: [[0b00_01_10_11]]))
        #expect(img.rgb == gray([0, 85, 170, 255]))
        img = try decodeBytes(PNGWriter.png(width: 2, height: 1, depth: 4, colorType: 0, rows: [[0x3F]]))
        #expect(img.rgb == gray([51, 255]))

        // Palette 8-bit with tRNS: palette colours, transparency ignored.
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7]
        img = try decodeBytes(PNGWriter.png(width: 4, height: 1, depth: 8, colorType: 3, rows: [[3, 2, 1, 0]], palette: palette, trns: [0, 128]))
        #expect(img.rgb == [9, 8, 7, 0, 0, 255, 0, 255, 0, 255, 0, 0])
        // Palette 2-bit, packed.
        img = try decodeBytes(PNGWriter.png(width: 4, height: 1, depth: 2, colorType: 3, rows: [[0b11_00_01_10]], palette: palette))
        #expect(img.rgb == [9, 8, 7, 255, 0, 0, 0, 255, 0, 0, 0, 255])

        // RGB 16-bit: the high byte of each sample.
        img = try decodeBytes(PNGWriter.png(width: 1, height: 1, depth: 16, colorType: 2, rows: [[0x12, 0xff, 0xab, 0x01, 0x00, 0x80]]))
        #expect(img.rgb == [0x12, 0xab, 0x00])
        // Gray 16-bit: Pillow opens it as a 32-bit integer image and clips to 255 when converting.
        img = try decodeBytes(PNGWriter.png(width: 3, height: 1, depth: 16, colorType: 0, rows: [[0x00, 0x07, 0x00, 0xff, 0x01, 0x00]]))
        #expect(img.rgb == gray([7, 255, 255]))
    }

    @Test func interlacedPNGIsDeinterlaced() throws {
        let w = 11, h = 9
        let rgb = (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let img = try decodeBytes(PNGWriter.interlacedRGB(width: w, height: h, rgb: rgb))
        #expect(img.width == w && img.height == h && img.rgb == rgb)
    }

    @Test(.enabled(if: TestData.hasShared)) func damagedFilesFailCleanly() throws {
        // Random byte damage must give an image or a BLError: never a crash, hang or other error.
        let root = try #require(FramesMini.root)
        var s: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return Int(s >> 1) }
        for src in ["frames_jpg/00002.jpg", "frames_png/00002.png"] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + src)))
            var failures = 0
            for _ in 0..<60 {
                var bytes = original
                for _ in 0..<(1 + next() % 8) { bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next()) }
                do {
                    let img = try decodeBytes(bytes)
                    #expect(img.isConsistent)
                } catch is BLError {
                    failures += 1
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
            // PNG chunks carry CRCs: almost every damaged PNG must be refused.
            if src.hasSuffix("png") { #expect(failures > 50) }
        }
    }

    @Test func corruptAndTruncatedImagesAreErrors() throws {
        let good = PNGWriter.png(width: 2, height: 2, depth: 8, colorType: 2, rows: [[UInt8](repeating: 5, count: 6), [UInt8](repeating: 6, count: 6)])
        #expect(try decodeBytes(good).rgb.count == 12)
        // Truncated in the middle of IDAT.
        #expect(throws: BLError.self) { try decodeBytes(Array(good[0..<50])) }
        // Bad CRC on IDAT (flip one pixel byte).
        var bad = good
        bad[bad.count - 20] ^= 0x55
        #expect(throws: BLError.self) { try decodeBytes(bad) }
        // Bad IHDR (zero width) and not an image at all.
        let zeroWidth = PNGWriter.png(width: 0, height: 2, depth: 8, colorType: 2, rows: [[], []])
        #expect(throws: BLError.self) { try decodeBytes(zeroWidth) }
        do {
            _ = try decodeBytes(Array("hello, not an image".utf8))
            Issue.record("decoding text did not fail")
        } catch let e as BLError {
            #expect(e.kind == .format)
            #expect(e.message.contains("not a PNG or JPEG"))
        }
        // A header promising a huge image is refused before any pixel buffer is allocated.
        let huge = PNGWriter.png(width: 100_000, height: 100_000, depth: 8, colorType: 2, rows: [])
        #expect(throws: BLError.self) { try decodeBytes(huge) }
        func failure(_ bytes: [UInt8]) -> BLError? {
            do { _ = try decodeBytes(bytes); return nil } catch { return error as? BLError }
        }
        #expect(failure(Array(good[0..<50]))?.message.contains("truncated") == true)
        #expect(failure(huge)?.kind == .unsupported)
        #expect(failure(huge)?.message.contains("exceeds the limit") == true)
    }

    @Test(.enabled(if: TestData.hasShared)) func truncatedJpegAndPngFilesNameTheFile() throws {
        let root = try #require(FramesMini.root)
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for src in ["frames_jpg/00001.jpg", "frames_png/00001.png"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: root + "/" + src))
            let path = dir + "/" + (src as NSString).lastPathComponent
            try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: path))
            do {
                _ = try ImageDecoder.decode(path: path)
                Issue.record("truncated \(src) decoded without error")
            } catch let e as BLError {
                #expect(e.file == path)
                #expect(e.kind == .format)
                #expect(e.description.contains("truncated"), "\(e)")
            }
        }
        // Intact files decode to the fixture's size.
        let img = try ImageDecoder.decode(path: root + "/frames_jpg/00001.jpg")
        #expect(img.width == 320 && img.height == 240)
        #expect(throws: BLError.self) { try ImageDecoder.decode(path: dir + "/missing.png") }
    }
}

// MARK: - frame folders

@Suite struct MediaFolderTests {
    /// A folder with `count` copies of a small PNG named 00001.png...
    func makeFolder(count: Int, ext: String = "png", skip: Set<Int> = [], bytes: (Int) -> [UInt8]) throws -> String {
        let dir = try TestData.temporaryDirectory()
        for n in 1...max(count, 1) where count > 0 && !skip.contains(n) {
            try Data(bytes(n)).write(to: URL(fileURLWithPath: dir + String(format: "/%05d.%@", n, ext)))
        }
        return dir
    }

    func smallPNG(width: Int = 40, height: Int = 30, value: UInt8 = 9) -> [UInt8] {
        PNGWriter.png(width: width, height: height, depth: 8, colorType: 2,
                      rows: (0..<height).map { y in (0..<(width * 3)).map { UInt8(truncatingIfNeeded: $0 + y) &+ value } })
    }

    func error(_ body: () throws -> Void) -> BLError? {
        do { try body(); return nil } catch { return error as? BLError }
    }

    @Test func folderProblemsAreClearErrors() throws {
        let p = Preprocessing(frames: 4, scale: 32, crop: 32)
        // Missing folder.
        var e = error { _ = try p.clipTensor(fromFolder: "/nonexistent/blconvert-frames") }
        #expect(e?.kind == .io && e?.message.contains("does not exist") == true)
        // No frames.
        let empty = try makeFolder(count: 0) { _ in [] }
        defer { try? FileManager.default.removeItem(atPath: empty) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: empty + "/notes.txt"))
        e = error { _ = try p.clipTensor(fromFolder: empty) }
        #expect(e?.message.contains("no frames") == true)
        // A gap in the numbering.
        let gap = try makeFolder(count: 6, skip: [3]) { _ in smallPNG() }
        defer { try? FileManager.default.removeItem(atPath: gap) }
        e = error { _ = try p.clipTensor(fromFolder: gap) }
        #expect(e?.message.contains("frame 3 is missing") == true)
        // Numbering from 0.
        try Data(smallPNG()).write(to: URL(fileURLWithPath: gap + "/00000.png"))
        e = error { _ = try p.clipTensor(fromFolder: gap) }
        #expect(e?.message.contains("frame number 0") == true)
        // Mixed formats.
        let mixed = try makeFolder(count: 6) { _ in smallPNG() }
        defer { try? FileManager.default.removeItem(atPath: mixed) }
        try Data(smallPNG()).write(to: URL(fileURLWithPath: mixed + "/00007.jpg"))
        e = error { _ = try p.clipTensor(fromFolder: mixed) }
        #expect(e?.message.contains("mixes PNG and JPEG") == true)
        // A corrupt sampled frame is named. 8 frames, T = 4: frames 2, 4, 6, 8 are read.
        let corrupt = try makeFolder(count: 8) { n in n == 6 ? Array(smallPNG().prefix(60)) : smallPNG() }
        defer { try? FileManager.default.removeItem(atPath: corrupt) }
        e = error { _ = try p.clipTensor(fromFolder: corrupt) }
        #expect(e?.file?.hasSuffix("00006.png") == true && e?.kind == .format)
        // Sampled frames of different sizes.
        let sizes = try makeFolder(count: 8) { n in n == 8 ? smallPNG(width: 41) : smallPNG() }
        defer { try? FileManager.default.removeItem(atPath: sizes) }
        e = error { _ = try p.clipTensor(fromFolder: sizes) }
        #expect(e?.kind == .mismatch && e?.file?.hasSuffix("00008.png") == true)
        // Invalid settings.
        e = error { _ = try Preprocessing(frames: 0).clipTensor(fromFolder: sizes) }
        #expect(e?.kind == .invalidArgument)
    }

    @Test func shortVideoRepeatsFramesAsTheReference() throws {
        // 3 frames, T = 8: the reference's seeded draw gives frames 1, 1, 1, 2, 2, 2, 3, 3.
        let dir = try makeFolder(count: 3) { n in smallPNG(value: UInt8(n * 50)) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Preprocessing(frames: 8, scale: 30, crop: 24)
        let (t, indices) = try p.clipTensor(fromFolder: dir)
        #expect(indices == [1, 1, 1, 2, 2, 2, 3, 3])
        #expect(t.shape == [1, 24, 24, 24])
        let v = t.floats(), plane = 24 * 24 * 3
        #expect(Array(v[0..<plane]) == Array(v[plane..<(2 * plane)]))
        #expect(Array(v[(2 * plane)..<(3 * plane)]) != Array(v[(3 * plane)..<(4 * plane)]))
    }

    @Test func scaleAndCropGeometryFollowsTorchvision() {
        let p = Preprocessing(frames: 1, scale: 256, crop: 224)
        // Shorter side to 256, longer side int(256 * 320 / 240) = 341; crop left round(58.5) = 58 (half to even).
        #expect(p.scaledSize(width: 320, height: 240) == (341, 256))
        #expect(p.cropOrigin(width: 341, height: 256) == (58, 16))
        #expect(p.scaledSize(width: 240, height: 320) == (256, 341))
        #expect(Preprocessing(frames: 1, scale: 224).scaledSize(width: 320, height: 240) == (298, 224))
        #expect(Preprocessing(frames: 1).cropOrigin(width: 298, height: 224) == (37, 0))
        // round(0.5) = 0, round(1.5) = 2, round(2.5) = 2 in Python.
        #expect(Preprocessing(frames: 1, crop: 10).cropOrigin(width: 11, height: 13) == (0, 2))
        #expect(Preprocessing(frames: 1, crop: 10).cropOrigin(width: 15, height: 10) == (2, 0))
        // Smaller than the crop: torchvision pads (crop - size) // 2 zeros before.
        #expect(Preprocessing(frames: 1, crop: 10).cropOrigin(width: 7, height: 10) == (-1, 0))
    }
}

// MARK: - .npy

@Suite struct MediaNPYTests {
    @Test func readsNumpyFilesOfEveryHeaderVersion() throws {
        // Written by NumPy 2.4.6: (np.arange(36, dtype='<f4').reshape(1, 6, 3, 2) * 0.5 - 3), saved with
        // np.save (format 1.0) and np.lib.format.write_array(version=(2, 0)) / (3, 0).
        let expected = (0..<36).map { Float($0) * 0.5 - 3 }
        for v in 1...3 {
            let t = try NPYReader.load(path: TestData.fixture("media/clip_v\(v).npy"))
            #expect(t.dtype == .float32)
            #expect(t.shape == [1, 6, 3, 2])
            #expect(t.floats() == expected)
        }
        let scalar = try NPYReader.load(path: TestData.fixture("media/scalar_f4.npy"))
        #expect(scalar.shape == [] && scalar.floats() == [2.5])
    }

    @Test func refusesWhatItCannotReadFaithfully() throws {
        for (name, needle) in [("fortran_f4", "Fortran"), ("float64", "'<f8'"), ("bigendian_f4", "'>f4'")] {
            let path = TestData.fixture("media/\(name).npy")
            do {
                _ = try NPYReader.load(path: path)
                Issue.record("\(name) loaded")
            } catch let e as BLError {
                #expect(e.kind == .unsupported && e.message.contains(needle) && e.file == path, "\(e)")
            }
        }
        // Truncated data, a header claiming a huge shape, garbage, and a bad header.
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Data(contentsOf: URL(fileURLWithPath: TestData.fixture("media/clip_v1.npy")))
        func header(_ dict: String) -> Data {
            var h = Array(dict.utf8)
            while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
            h.append(0x0a)
            return Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.count & 0xff), UInt8(h.count >> 8)] + h)
        }
        let cases: [(String, Data, String)] = [
            ("truncated", good.prefix(good.count - 4), "needs 36 float32 values"),
            ("huge", header("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 1000), }") + Data(count: 16), "needs"),
            ("garbage", Data("not numpy at all".utf8), "magic"),
            ("badheader", header("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }") + Data(count: 24), "malformed"),
            ("noshape", header("{'descr': '<f4', 'fortran_order': False}") + Data(count: 4), "shape"),
            ("shortheader", Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0xff, 0x00, 0x7b]), "unexpected end"),
        ]
        for (name, data, needle) in cases {
            let path = dir + "/\(name).npy"
            try data.write(to: URL(fileURLWithPath: path))
            do {
                _ = try NPYReader.load(path: path)
                Issue.record("\(name) loaded")
            } catch let e as BLError {
                #expect(e.kind == .format && e.description.contains(needle) && e.file == path, "\(name): \(e)")
            }
        }
    }
}
