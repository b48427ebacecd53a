import Testing
import BLTestSupport
import Foundation
import BLCore
import BLGraph
import BLVNet

/// A tiny hand-made graph: input T=2, C=3 -> frames -> conv 3->4 3x3/2 -> bn -> relu.
private func tinyGraph(convIn: Int = 3, weightShape: [Int]? = nil) -> Graph {
    var g = Graph()
    let x0 = g.add(.input(frames: 2, channels: 3), [])
    let x1 = g.add(.framesFromChannels(frames: 2), [x0])
    let conv = Conv2D(inChannels: convIn, outChannels: 4, kernel: 3, stride: 2, padding: 1, weight: "c.weight")
    let c = g.add(.conv2d(conv), [x1], origin: "c")
    g.declareWeight("c.weight", shape: weightShape ?? conv.weightShape)
    let bnOp = Op.batchNorm(BatchNorm(channels: 4, module: "bn"))
    g.declareWeights(of: bnOp)
    let b = g.add(bnOp, [c], origin: "bn")
    g.output = g.add(.relu, [b])
    return g
}

@Suite struct GraphTests {
    @Test func shapeInferenceOfASmallGraph() throws {
        let g = tinyGraph()
        let s = try g.inferShapes(height: 9, width: 6)
        #expect(s[0] == NodeShape(perClip: 1, channels: 6, height: 9, width: 6))
        #expect(s[1] == NodeShape(perClip: 2, channels: 3, height: 9, width: 6))
        #expect(s[2] == NodeShape(perClip: 2, channels: 4, height: 5, width: 3))
        #expect(s[2].dims(batch: 3) == [6, 4, 5, 3])
        #expect(try g.inferShapes(batch: 2, height: 9, width: 6).last == [4, 4, 5, 3])
    }

    @Test func channelMismatchNamesTheNode() throws {
        let g = tinyGraph(convIn: 5)
        #expect {
            _ = try g.inferShapes(height: 8, width: 8)
        } throws: { e in
            let m = "\(e)"
            return m.contains("node 2 conv2d (c)") && m.contains("expects 5 input channels, got 3")
        }
    }

    @Test func wrongWeightShapeIsReported() throws {
        let g = tinyGraph(weightShape: [4, 3, 5, 5])
        #expect {
            _ = try g.inferShapes(height: 8, width: 8)
        } throws: { e in
            "\(e)".contains("weight 'c.weight' is declared [4, 3, 5, 5], the op needs [4, 3, 3, 3]")
        }
    }

    @Test func tooSmallInputNamesTheNode() throws {
        // The stem's 7x7/2 conv survives 1x1, but r50's layer pooling needs more: feed a tiny input
        // to a 7x7 conv without padding.
        var g = Graph()
        let x0 = g.add(.input(frames: 2, channels: 1), [])
        let x1 = g.add(.framesFromChannels(frames: 2), [x0])
        let op = Op.conv2d(Conv2D(inChannels: 1, outChannels: 2, kernel: 7, weight: "w"))
        g.declareWeights(of: op)
        g.output = g.add(op, [x1], origin: "big.conv")
        #expect(try g.inferShapes(height: 7, width: 7)[2].height == 1)
        #expect {
            _ = try g.inferShapes(height: 6, width: 9)
        } throws: { e in
            "\(e)".contains("node 2 conv2d (big.conv): input 6x9 is too small")
        }
    }

    @Test func structuralErrors() throws {
        var g = tinyGraph()
        g.nodes[3].inputs = [4]
        #expect(throws: BLError.self) { try g.validateStructure() }
        var h = tinyGraph()
        h.weights.removeAll { $0.name == "bn.running_var" }
        #expect {
            try h.validateStructure()
        } throws: { e in "\(e)".contains("weight 'bn.running_var' is not declared") }
    }

    @Test func jsonRoundTripOfTheMiniGraph() throws {
        let cfg = BLVNetConfig(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, frames: 8, numClasses: 10)
        let g = try BLVNetGraph.build(cfg)
        let text = g.json.serialized(indent: 1)
        let back = try Graph(jsonText: text)
        #expect(back == g)
        // A fused graph (conv bias + relu, add relu) survives too.
        var f = g
        if case .conv2d(var c) = f.nodes[2].op {
            c.bias = "baseline_model.conv1.bias"
            c.relu = true
            f.nodes[2].op = .conv2d(c)
            f.declareWeight("baseline_model.conv1.bias", shape: [64])
        }
        #expect(try Graph(jsonText: f.json.serialized()) == f)
    }

    @Test func jsonRejectsUnknownOps() throws {
        let g = tinyGraph()
        let text = g.json.serialized().replacingOccurrences(of: "\"op\":\"relu\"", with: "\"op\":\"gelu\"")
        #expect {
            _ = try Graph(jsonText: text)
        } throws: { e in "\(e)".contains("unknown op 'gelu'") }
        #expect(throws: BLError.self) { _ = try Graph(jsonText: "{\"format\": \"blgraph\", \"version\": 99}") }
    }

    @Test func textDumpShowsShapesOriginsAndTaps() throws {
        let cfg = BLVNetConfig(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, frames: 8, numClasses: 10)
        let g = try BLVNetGraph.build(cfg)
        let dump = g.textDump(height: 33, width: 47)
        #expect(dump.contains("[N*8, 64, 17, 24]"))
        #expect(dump.contains("(baseline_model.layer2.big.0.conv1)"))
        #expect(dump.contains("= baseline_model.layer4"))
    }

    /// The reference shapes of the mini case's recorded activations (clip2, 33x47, N = 1).
    @Test func miniShapesMatchTheRecordedActivations() throws {
        let cfg = BLVNetConfig(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, frames: 8, numClasses: 10)
        let g = try BLVNetGraph.build(cfg)
        let s = try g.inferShapes(height: 33, width: 47)
        let expected: [(String, [Int])] = [
            ("conv1", [8, 64, 17, 24]), ("bn1", [8, 64, 17, 24]), ("tam", [8, 64, 17, 24]),
            ("bn_bl_init", [4, 64, 9, 12]), ("layer1", [8, 256, 5, 6]), ("layer2", [8, 512, 3, 3]),
            ("layer3", [8, 1024, 3, 3]), ("layer4", [4, 2048, 2, 2]), ("gappool", [4, 2048, 1, 1]),
        ]
        for (m, dims) in expected {
            let node = try #require(g.tap("baseline_model." + m))
            #expect(s[node].dims(batch: 1) == dims, "\(m)")
        }
        #expect(s[g.output].dims(batch: 1) == [1, 10])
    }

    @Test func r50AndR101Counts() throws {
        let r50 = try BLVNetGraph.build(BLVNetConfig(blocks: [3, 4, 6, 3], alpha: 2, beta: 4, frames: 16, numClasses: 174))
        let c50 = try r50.cost(batch: 1, height: 224, width: 224)
        #expect((Double(c50.totalMACs) / 1e6).rounded() == 23851)
        #expect((Double(c50.parameters) / 1e4).rounded() == 2502)
        let r101 = try BLVNetGraph.build(BLVNetConfig(blocks: [4, 8, 18, 3], alpha: 2, beta: 4, frames: 16, numClasses: 174))
        let c101 = try r101.cost(batch: 1, height: 224, width: 224)
        #expect((Double(c101.totalMACs) / 1e6).rounded() == 32149)
        // Two clips cost twice one.
        #expect(try r50.cost(batch: 2, height: 224, width: 224).totalMACs == 2 * c50.totalMACs)
        #expect(c50.peakActivationBytes > 0 && c50.peakActivationBytes < c50.totalActivationBytes)
        let out = c50.nodes[r50.output]
        #expect(out.outputBytes == 174 * 4)
    }

    @Test func sha256KnownVectors() throws {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // One million 'a' fed in uneven pieces.
        var h = SHA256()
        let chunk = [UInt8](repeating: 0x61, count: 999)
        var left = 1_000_000
        while left > 0 {
            let n = min(left, chunk.count - (left % 7))
            chunk.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        #expect(SHA256.hexString(h.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha256OfTheBundledCheckpointMatchesItsManifest() throws {
        let manifest = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: TestData.fixture("mini-a2b4-f4x2/manifest.json")))))
        let expected = try #require(manifest["sha256"]?["model.pth.tar"]?.stringValue)
        #expect(try SHA256.hex(file: TestData.fixture("mini-a2b4-f4x2/model.pth.tar")) == expected)
    }
}
