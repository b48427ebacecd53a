import Foundation
import Testing
@testable import BLCore
@testable import BLMedia

/// Reference tensors of the frames-mini case, read straight from its safetensors file
/// (u64 header length, JSON header, raw little-endian data).
private enum FramesMini {
    static let root = TestData.shared("frames-mini")

    static func tensor(_ name: String) throws -> Tensor? {
        guard let root else { return nil }
        let path = root + "/preprocessed.safetensors"
        guard FileManager.default.fileExists(atPath: path) else {
            TestData.skipNote("\(path) not found"); return nil
        }
        let file = try MappedFile(path: path)
        var r = ByteReader(file.bytes)
        let n = Int(try r.u64())
        let header = try JSONParser.parse(try r.slice(n))
        guard let entry = header[name], let dtypeName = entry["dtype"]?.stringValue,
              let dtype = DType(safetensorsName: dtypeName),
              let shape = entry["shape"]?.arrayValue?.compactMap({ $0.intValue }),
              let offsets = entry["data_offsets"]?.arrayValue?.compactMap({ $0.intValue }), offsets.count == 2
        else { return nil }
        return try Tensor(dtype: dtype, shape: shape,
                          storage: file.storage((8 + n + offsets[0])..<(8 + n + offsets[1])))
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
        let start = Date()
        let (tensor, indices) = try p.clipTensor(fromFolder: root + "/" + folder)
        let elapsed = Date().timeIntervalSince(start)
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

    @Test func pngClipMatchesReferenceScale224() throws {
        guard let r = try compare(folder: "frames_png", scale: 224, reference: "input_png_scale224") else { return }
        #expect(r.maxAbs <= 1e-5)
        #expect(r.maxPixel == 0)
        #expect(r.identical == 1.0)
    }

    @Test func pngClipMatchesReferenceScale256() throws {
        guard let r = try compare(folder: "frames_png", scale: 256, reference: "input_png_scale256") else { return }
        #expect(r.maxAbs <= 1e-5)
        #expect(r.maxPixel == 0)
        #expect(r.identical == 1.0)
    }

    @Test func jpegClipAgainstReference() throws {
        guard let r = try compare(folder: "frames_jpg", scale: 224, reference: "input_jpg_scale224") else { return }
        #expect(r.maxAbs <= 1e-5)
    }
}
