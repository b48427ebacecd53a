import Testing
import BLTestSupport
import Foundation
import BLCore
import BLGraph
@testable import BLVNet

@Suite struct ModelPackageTests {
    static func miniModel() throws -> ImportedModel {
        let spec = ReferenceSpec(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, classes: 10)
        return try BLVNetImporter.importModel(tensors: try synthesize(referenceStateDict(spec), seed: 3), frames: 8,
                                              nameHints: ["mini-a2b4-f4x2/model.pth.tar"])
    }

    @Test func writeAndReadBack() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Self.miniModel()
        let source = ModelPackage.Source(fileName: "model.pth.tar", sha256: String(repeating: "ab", count: 32))
        let pkg = try ModelPackage(importing: model, source: source, toolVersion: "9.9.9")
        try pkg.write(to: dir + "/mini.blc")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["mini.blc"])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/mini.blc"))
                == ["graph.json", "weights.safetensors", "metadata.json"])
        let back = try ModelPackage.read(dir + "/mini.blc")
        #expect(back.graph == pkg.graph)
        #expect(back.config == model.config && back.config.beta == 4 && back.config.frames == 8)
        #expect(back.source == source && back.dtype == .float32 && back.optimized && back.toolVersion == "9.9.9")
        #expect(back.weights.count == pkg.graph.weights.count)
        for (name, t) in pkg.weights { #expect(back.weights[name]?.floats() == t.floats(), "\(name)") }

        // f16: each convolution / linear weight is the original rounded to half; vectors stay float32.
        var half = pkg
        half.dtype = .float16
        try half.write(to: dir + "/half")
        let h = try ModelPackage.read(dir + "/half")
        #expect(h.dtype == .float16)
        let name = "baseline_model.layer2.big.0.conv2.weight"
        #expect(h.weights[name]?.dtype == .float16)
        #expect(h.weights[name]?.floats() == pkg.weights[name]?.floats().map { HalfConversion.halfToFloat(HalfConversion.floatToHalf($0)) })
        let matrices = ModelPackage.halfPrecisionWeights(in: h.graph)
        #expect(matrices.contains("new_fc.weight") && !matrices.contains("new_fc.bias"))
        for (vector, t) in h.weights where !matrices.contains(vector) {
            #expect(t.dtype == .float32 && t.floats() == pkg.weights[vector]?.floats(), "\(vector)")
        }
    }

    @Test func failuresLeaveNothingBehind() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var pkg = try ModelPackage(importing: try Self.miniModel(), optimize: false, source: nil, toolVersion: "t")
        // An existing target is kept unless overwriting is asked for.
        try pkg.write(to: dir + "/m")
        #expect(throws: BLError.self) { try pkg.write(to: dir + "/m") }
        pkg.toolVersion = "second"
        try pkg.write(to: dir + "/m", overwrite: true)
        #expect(try ModelPackage.read(dir + "/m").toolVersion == "second")
        // A missing weight fails before anything is renamed into place, and the temp dir is gone.
        var broken = pkg
        broken.weights["new_fc.bias"] = nil
        #expect { try broken.write(to: dir + "/b") } throws: { e in "\(e)".contains("new_fc.bias") }
        // Integer storage is refused.
        var refused = pkg
        refused.dtype = .int8
        #expect(throws: BLError.self) { try refused.write(to: dir + "/c") }
        // A weight name the safetensors writer refuses fails after graph.json is written.
        var g = Graph()
        let x0 = g.add(.input(frames: 2, channels: 1), [])
        let x1 = g.add(.framesFromChannels(frames: 2), [x0])
        let op = Op.conv2d(Conv2D(inChannels: 1, outChannels: 1, kernel: 1, weight: "__metadata__"))
        g.declareWeights(of: op)
        g.output = g.add(op, [x1])
        let odd = ModelPackage(graph: g, weights: ["__metadata__": try Tensor.fromFloats([1], shape: [1, 1, 1, 1])],
                               config: pkg.config, source: nil, dtype: .float32, optimized: false, toolVersion: "t")
        #expect { try odd.write(to: dir + "/d") } throws: { e in "\(e)".contains("reserved") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m"])
        // Damaged packages are reported with the file.
        try "{\"format\": \"blgraph\", \"version\": 1, \"nodes\": [], \"output\": 0, \"weights\": [], \"taps\": []}"
            .write(toFile: dir + "/m/graph.json", atomically: false, encoding: .utf8)
        #expect { _ = try ModelPackage.read(dir + "/m") } throws: { e in "\(e)".contains("graph.json") }
        #expect(throws: BLError.self) { _ = try ModelPackage.read(dir + "/nothing") }
    }
}
