import Testing
import BLTestSupport
@testable import BLConvert
import Foundation
import BLCore
import BLCheckpoint
@testable import BLVNet

/// The import path's speed-ups keep results: folding straight from (unaligned, released) mapped
/// checkpoint bytes, and the source digest computed while the package is written.
@Suite struct ModelPackageImportTests {
    static let mini = "mini-a2b4-f4x2/model.pth.tar"

    static func manifestDigest() throws -> String {
        let m = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: TestData.fixture("mini-a2b4-f4x2/manifest.json")))))
        return try #require(m["sha256"]?["model.pth.tar"]?.stringValue)
    }

    @Test func pendingSourceIsRecordedInTheMetadata() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = TestData.fixture(Self.mini)
        let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 8)
        let pending = ModelPackage.PendingSource(file: path)
        var pkg = try ModelPackage(importing: model, source: nil, toolVersion: "t")
        try pkg.write(to: dir + "/m.blc", source: pending)
        let expected = ModelPackage.Source(fileName: "model.pth.tar", sha256: try Self.manifestDigest())
        #expect(pkg.source == expected)
        #expect(try pending.wait() == expected && pending.seconds > 0)
        let back = try ModelPackage.read(dir + "/m.blc")
        #expect(back.source == expected)
        #expect(back.graph == pkg.graph && back.weights.count == pkg.weights.count)
    }

    @Test func failedDigestLeavesNothingBehind() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: TestData.fixture(Self.mini)), frames: 8)
        var pkg = try ModelPackage(importing: model, source: nil, toolVersion: "t")
        let pending = ModelPackage.PendingSource(file: dir + "/no-such-checkpoint.pth")
        #expect { try pkg.write(to: dir + "/m.blc", source: pending) } throws: { e in
            (e as? BLError)?.kind == .io && "\(e)".contains("no-such-checkpoint")
        }
        #expect(pkg.source == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    /// Folding that releases the checkpoint's pages gives the same bytes as plain folding, and the
    /// checkpoint's tensors still read their original values afterwards.
    @Test func foldingWithReleasedInputsEqualsPlainFolding() throws {
        let path = TestData.fixture(Self.mini)
        let reference = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 8)
        let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 8)
        let (g0, w0) = try GraphPasses.optimize(reference.graph, weights: reference.weights)
        let (g1, w1) = try GraphPasses.optimize(model.graph, weights: model.weights, releasingInputs: true)
        #expect(g0 == g1 && w0.count == w1.count && w0.count > 0)
        for (name, t) in w0 {
            let u = try #require(w1[name])
            #expect(u.dtype == .float32 && t.contiguousBytes() == u.contiguousBytes(), "\(name)")
        }
        for (name, t) in reference.weights { #expect(model.weights[name]?.contiguousBytes() == t.contiguousBytes(), "\(name)") }
    }

    /// `scaledRows` reads contiguous float32 (unaligned too) and float64 in place and every other
    /// layout through `doubles()`; all give `Float(Double(x) * scale[row])`.
    @Test func scaledRowsOnEveryLayout() throws {
        var rng = SeededRandom(state: 11)
        let (rows, per) = (5, 18)
        let values = (0..<(rows * per)).map { _ in rng.uniform(-3, 3) }
        let scales = (0..<rows).map { _ in rng.uniform(-2, 2) }
        let floats = values.map { Float($0) }
        func check(_ t: Tensor, _ label: String) throws {
            let expected = t.doubles().enumerated().map { Float($0.element * scales[$0.offset / per]) }
            let out = try GraphPasses.scaledRows(t, scales)
            #expect(out.dtype == .float32 && out.shape == t.shape && out.isContiguous, "\(label)")
            #expect(out.floats() == expected, "\(label)")
        }
        let shape = [rows, 2, 3, 3]
        try check(try Tensor.fromFloats(floats, shape: shape), "f32")
        // float32 one byte off alignment, as inside a legacy checkpoint.
        let raw = ByteStorage(copying: [0x7f] + floats.withUnsafeBytes { Array($0) })
        let shifted = ByteStorage(slice: UnsafeRawBufferPointer(rebasing: raw.bytes[1...]), owner: raw)
        try check(try Tensor(dtype: .float32, shape: shape, storage: shifted), "unaligned f32")
        let f64 = ByteStorage(copying: values.withUnsafeBytes { Array($0) })
        try check(try Tensor(dtype: .float64, shape: shape, storage: f64), "f64")
        // A permuted view [rows, per] of a [per, rows] buffer.
        let transposed = try Tensor(dtype: .float32, shape: [rows, per], strides: [1, rows],
                                    storage: ByteStorage(copying: floats.withUnsafeBytes { Array($0) }))
        try check(transposed, "strided f32")
        let half = try Tensor.fromFloats(floats, shape: shape).converted(to: .float16)
        try check(half, "f16")
    }

    /// Folded weights placed in the shared arena equal those in memory of their own; a full arena
    /// falls back to separate allocations.
    @Test func arenaSlicesEqualSeparateTensors() throws {
        #expect(WeightArena(capacity: 1 << 20) == nil)  // too small to be worth a mapping
        let arena = try #require(WeightArena(capacity: 3 << 20))
        var rng = SeededRandom(state: 21)
        let shape = [256, 64, 3, 3]  // 576 KiB of float32: five fit, the sixth does not
        for k in 0..<6 {
            let t = try Tensor.fromFloats((0..<(256 * 576)).map { _ in Float(rng.uniform(-1, 1)) }, shape: shape)
            let scales = (0..<256).map { _ in rng.uniform(0.1, 4) }
            let a = try GraphPasses.scaledRows(t, scales, arena: arena)
            let b = try GraphPasses.scaledRows(t, scales)
            #expect(a.contiguousBytes() == b.contiguousBytes(), "tensor \(k)")
            #expect(Int(bitPattern: a.storage.bytes.baseAddress) % 64 == 0)
        }
        #expect(arena.take(1) != nil && arena.take(1 << 20) == nil)
    }

    /// On the R50 checkpoint (folded through the arena, its pages released), folded convolutions
    /// equal the formula evaluated from a separate import.
    @Test(.enabled(if: TestData.hasShared)) func r50FoldedWeightsEqualTheFormula() throws {
        let path = TestData.shared("r50-a2b4-f8x2-ssv2/model.pth.tar")
        let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 16)
        let fresh = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 16)
        let (_, folded) = try GraphPasses.optimize(model.graph, weights: model.weights, releasingInputs: true)
        let p = "baseline_model."
        for (conv, bn) in [("conv1", "bn1"), ("layer4.2.conv2", "layer4.2.bn2"), ("layer3.big.0.conv1", "layer3.big.0.bn1")] {
            let w = try #require(fresh.weights[p + conv + ".weight"])
            func values(_ name: String) throws -> [Double] { try #require(fresh.weights[p + bn + "." + name]).doubles() }
            let (g, var_, cout) = (try values("weight"), try values("running_var"), w.shape[0])
            let per = w.elementCount / cout
            let x = w.doubles()
            let expected = (0..<x.count).map { i in Float(x[i] * (g[i / per] / (var_[i / per] + 1e-5).squareRoot())) }
            let got = try #require(folded[p + conv + ".weight"])
            #expect(got.floats() == expected, "\(conv)")
        }
        #expect(try #require(model.weights[p + "conv1.weight"]).contiguousBytes() == fresh.weights[p + "conv1.weight"]?.contiguousBytes())
    }
}
