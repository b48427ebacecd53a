import Testing
import BLTestSupport
import Foundation
@testable import BLCore
@testable import BLPickle
@testable import BLTorch
@testable import BLSafetensors
@testable import BLCheckpoint
@testable import BLGraph
@testable import BLVNet
@testable import BLMedia
@testable import BLHDF5

/// Issue 12: crashes, memory and hangs from small hostile inputs, each built here.
@Suite struct ReaderHardeningTests {
    static func load(_ bytes: [UInt8], data: TensorData = .read) throws -> Value {
        let owner = ByteStorage(copying: bytes)
        return try TorchFile.read(owner.bytes, owner: owner, data: data).1
    }

    static func tempDir() throws -> String { try TestData.temporaryDirectory() }

    // MARK: 1. JSON surrogates

    @Test func unpairedHighSurrogateIsReplacedNotTrapped() throws {
        #expect(try JSONParser.parse(#""\ud800\u0041""#) == .string("\u{fffd}A"))
        #expect(try JSONParser.parse(#""\ud800\ud800\udc00""#) == .string("\u{fffd}\u{10000}"))
        #expect(try JSONParser.parse(#""\udc00x""#) == .string("\u{fffd}x"))
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("\u{1F600}"))
        #expect(throws: BLError.self) { try JSONParser.parse(#""\ud800\u00""#) }
    }

    // MARK: 2. offsets and strides near 2^63

    @Test func hugeOffsetsAndStridesAreFormatErrors() throws {
        let storage = floatBytes([1, 2, 3, 4])
        let cases: [(offset: Int, shape: [Int], strides: [Int])] = [
            (1 << 62, [2], [1]), (Int.max, [1], [1]), (0, [2, 2], [1 << 62, 1 << 62]), (Int.max - 1, [2], [1]),
            (0, [3], [Int.max / 2]),
        ]
        for c in cases {
            let pkl = PickleWriter.stateDict([("w", "0", 4, c.offset, c.shape, c.strides)])
            let e = try #require(throws: BLError.self) { _ = try Self.load(ZipWriter.checkpoint(pickle: pkl, storages: [("0", storage)])) }
            #expect(e.kind == .format, "\(c): \(e)")
            let legacy = legacyCheckpoint(object: pkl, storages: [("0", 4, storage)])
            let l = try #require(throws: BLError.self) { _ = try Self.load(legacy) }
            #expect(l.kind == .format, "legacy \(c): \(l)")
        }
        // The same writer's honest legacy file loads.
        let honest = legacyCheckpoint(object: PickleWriter.stateDict([("w", "0", 4, 1, [3], [1])]), storages: [("0", 4, storage)])
        #expect(try Self.load(honest).flattened().tensors.first?.tensor.floats() == [2, 3, 4])
        // An empty view may claim any offset (torch accepts it); it reads nothing.
        let pkl = PickleWriter.stateDict([("e", "0", 4, 1 << 62, [0, 1 << 40], [1, 1])])
        let v = try Self.load(ZipWriter.checkpoint(pickle: pkl, storages: [("0", storage)]))
        let t = try #require(v.flattened().tensors.first?.tensor)
        #expect(t.elementCount == 0 && t.contiguousBytes().isEmpty)
        t.withContiguousBytes { #expect($0.count == 0) }
    }

    @Test func checkedArithmeticThrowsWithContext() throws {
        let e = try #require(throws: BLError.self) { try Checked.multiply(Int.max, 2, "size of x") }
        #expect(e.kind == .format && e.message.contains("size of x overflows"))
        #expect(throws: BLError.self) { try Checked.add(Int.max, 1, "a") }
        #expect(throws: BLError.self) { try Checked.subtract(Int.min, 1, "a") }
        #expect(throws: BLError.self) { try Checked.product([1 << 32, 1 << 32], "p") }
        #expect(throws: BLError.self) { try Checked.int(UInt64.max, "u") }
        #expect(try Checked.product([2, 3, 7], "p") == 42 && Checked.bounded(5, 1...8, "b") == 5)
    }

    // MARK: 4. absurd padding, overflowing counts

    static func miniGraph() throws -> Graph {
        let cfg = BLVNetConfig(blocks: [2, 2, 2, 2], alpha: 2, beta: 4, frames: 4, numClasses: 7)
        return try BLVNetGraph.build(cfg)
    }

    @Test func absurdPaddingIsRefusedAndCostsAreChecked() throws {
        let g = try Self.miniGraph()
        var json = g.json
        // Set the first convolution's padding to 2^40.
        guard case .object(var top) = json, let ni = top.firstIndex(where: { $0.0 == "nodes" }),
              case .array(var nodes) = top[ni].1,
              let ci = nodes.firstIndex(where: { $0["op"]?.stringValue == "conv2d" }),
              case .object(var node) = nodes[ci], let ai = node.firstIndex(where: { $0.0 == "attrs" }),
              case .object(var attrs) = node[ai].1, let pi = attrs.firstIndex(where: { $0.0 == "padding" }) else {
            Issue.record("graph JSON layout"); return
        }
        attrs[pi].1 = .int(1 << 40)
        node[ai].1 = .object(attrs)
        nodes[ci] = .object(node)
        top[ni].1 = .array(nodes)
        json = .object(top)
        let e = try #require(throws: BLError.self) { _ = try Graph(json: json) }
        #expect(e.message.contains("padding"), "\(e)")
        // Counts of a valid graph for a batch that overflows are an error, not a trap.
        #expect(throws: BLError.self) { _ = try g.cost(batch: Int.max / 2, height: 224, width: 224) }
        #expect(throws: BLError.self) { _ = try g.inferShapes(height: 16384, width: 1 << 40) }
        #expect(Graph.windowOutput(Int.max, kernel: 1, stride: 1, padding: Int.max / 2) == nil)
    }

    // MARK: 5. package configuration against the graph

    @Test func packageConfigurationIsCheckedAgainstTheGraph() throws {
        let g = try Self.miniGraph()
        let cfg = BLVNetConfig(blocks: [2, 2, 2, 2], alpha: 2, beta: 4, frames: 4, numClasses: 7)
        var meta: [(String, JSON)] = [("format", .string(ModelPackage.format)), ("version", .int(Int64(ModelPackage.formatVersion))),
                                      ("dtype", .string("float32"))]
        func with(_ key: String, _ value: JSON) -> JSON {
            guard case .object(var c) = cfg.json, let i = c.firstIndex(where: { $0.0 == key }) else { return .null }
            c[i].1 = value
            return .object(meta + [("config", .object(c))])
        }
        meta.append(("optimized", .bool(false)))
        _ = try ModelPackage.description(metadata: .object(meta + [("config", cfg.json)]), graph: g)
        for (key, value) in [("frames", JSON.int(1 << 40)), ("frames", .int(6)), ("frames", .int(5)), ("num_classes", .int(8)),
                             ("num_classes", .int(1 << 50)), ("input_channels", .int(10)), ("alpha", .int(-1)),
                             ("blocks", .array([.int(1 << 30), .int(2), .int(2), .int(2)])), ("blending_frames", .int(1 << 20))] {
            let e = try #require(throws: BLError.self, "\(key) = \(value.serialized())") {
                _ = try ModelPackage.description(metadata: with(key, value), graph: g)
            }
            #expect(e.message.contains("configuration"), "\(e)")
        }
    }

    // MARK: 6. extreme aspect ratios

    @Test func cropWindowResizeEqualsTheWholeResize() throws {
        var rng = SeededRandom(state: 12)
        for (w, h) in [(640, 360), (57, 71), (300, 20), (16, 700), (224, 224), (225, 224), (100, 100), (40, 1000)] {
            let img = try Image8(width: w, height: h, rgb: (0..<(w * h * 3)).map { _ in UInt8(rng.next() & 0xff) })
            for scale in [224, 256, 100] {
                let p = Preprocessing(frames: 1, scale: scale)
                let size = p.scaledSize(width: w, height: h)
                let full = PillowResample.resizeBilinear(img, width: size.width, height: size.height)
                let o = p.cropOrigin(width: full.width, height: full.height)
                let expected = full.cropped(left: o.left, top: o.top, width: 224, height: 224)
                #expect(p.scaleAndCrop(img) == expected, "\(w)x\(h) scale \(scale)")
            }
        }
    }

    @Test func extremeAspectFrameCostsOnlyTheCrop() throws {
        // 262144 x 16: scaled to a short side of 224 it would be 3.7 M pixels wide (2.4 GB).
        let w = 262_144, h = 16
        let row = (0..<(w * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let png = PNGWriter.png(width: w, height: h, depth: 8, colorType: 2, rows: Array(repeating: row, count: h))
        let img = try png.withUnsafeBytes { try ImageDecoder.decode(bytes: $0) }
        let start = MonotonicClock.seconds()
        let out = Preprocessing(frames: 1).scaleAndCrop(img)
        #expect(out.width == 224 && out.height == 224)
        #expect(MonotonicClock.seconds() - start < 5)
    }

    // MARK: 7. deflate bombs

    @Test func deflatedMembersAreNotInflatedForListing() throws {
        // 16 MiB of zeros in about 100 KiB: raw deflate written by hand (fixed Huffman: a literal 0,
        // then matches of 258 at distance 1).
        let size = 16 << 20
        let deflated = Deflate.zeros(size)
        #expect(deflated.count * 150 < size)
        let pkl = PickleWriter.stateDict([("zeros", "0", size / 4, 0, [size / 4], [1])])
        var z = ZipWriter()
        z.add("archive/data.pkl", pkl)
        z.addDeflated("archive/data/0", compressed: deflated, size: size, crc: ZipWriter.crc32([UInt8](repeating: 0, count: size)))
        let bytes = z.bytes()
        let listed = try Self.load(bytes, data: .shapesOnly).flattened().tensors
        #expect(listed.first?.tensor.shape == [size / 4])
        #expect(listed.first?.tensor.storage.isReadable == false)
        let read = try Self.load(bytes).flattened().tensors
        #expect(read.first?.tensor.floats().allSatisfy { $0 == 0 } == true)
        // A damaged stream is still reported when listing.
        var bad = z
        bad.members[1].crc = 1
        #expect(throws: BLError.self) { _ = try Self.load(bad.bytes(), data: .shapesOnly) }
    }

    @Test func decompressionBudgetIsSharedWithHDF5() {
        #expect(ExpansionBudget.decompressedLimit(fileSize: 1000) == 1_100_000 + (1 << 20))
        #expect(HDF5Reader.byteLimit(fileSize: 1000) == ExpansionBudget.decompressedLimit(fileSize: 1000))
        #expect(ExpansionBudget.decompressedLimit(fileSize: Int.max) == Int.max)
    }

    // MARK: 8. stride-0 views

    @Test func expandedViewsAreBoundedWhenMaterialised() throws {
        // 20 views of 16 M elements over one 4-element storage: 1.3 GB from about 2 KB.
        let entries = (0..<20).map { ("big.\($0)", "0", 4, 0, [1 << 12, 1 << 12], [0, 0]) }
        let bytes = ZipWriter.checkpoint(pickle: PickleWriter.stateDict(entries), storages: [("0", floatBytes([1, 2, 3, 4]))])
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try writeFile(dir, "expand.pth", bytes)
        let ck = try Checkpoint.open(path: path)
        #expect(ck.tensors.count == 20)
        let e = try #require(throws: BLError.self) {
            _ = try Extractor.extract(ck, sourceName: "expand.pth", to: dir + "/out.safetensors")
        }
        #expect(e.message.contains("tensor 'big.") && e.message.contains("view"), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.safetensors"))
        // One small expanded view is fine.
        let one = ZipWriter.checkpoint(pickle: PickleWriter.stateDict([("b", "0", 4, 0, [8, 4], [0, 1])]),
                                       storages: [("0", floatBytes([1, 2, 3, 4]))])
        let ok = try Checkpoint.open(path: writeFile(dir, "one.pth", one))
        _ = try Extractor.extract(ok, sourceName: "one.pth", to: dir + "/one.safetensors")
        #expect(try SafetensorsFile.load(path: dir + "/one.safetensors").tensor("b")?.floats() == Array(repeating: [Float(1), 2, 3, 4], count: 8).flatMap { $0 })
    }

    // MARK: 9 and 11. memo-shared values

    static func sharedStringPickle(length: Int, repeats: Int, container: Character) -> [UInt8] {
        var w = PickleWriter(protocol: 2)
        w.op(container == "s" ? "\u{8f}" : container == "d" ? "}" : "]")  // EMPTY_SET / EMPTY_DICT / EMPTY_LIST
        w.mark()
        w.str(String(repeating: "a", count: length))
        w.binPut(0)
        if container == "d" { w.int(0) }
        for i in 1..<repeats {
            w.binGet(0)
            if container == "d" { w.int(i) }
        }
        w.op(container == "s" ? "\u{90}" : container == "d" ? "u" : "e")  // ADDITEMS / SETITEMS / APPENDS
        w.stop()
        return w.bytes
    }

    @Test func sharedValuesArePrintedOnce() throws {
        let pkl = Self.sharedStringPickle(length: 1 << 20, repeats: 2000, container: "l")
        let start = MonotonicClock.seconds()
        let v = try unpickle(pkl)
        let text = SharedValuePrinter().json(v, path: "").serialized()
        #expect(text.utf8.count < (1 << 20) + 100_000, "\(text.utf8.count) bytes")
        #expect(text.contains("<shared: same as 0>"))
        // Through the checkpoint view and extract's metadata, too.
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ck = try Checkpoint.open(path: writeFile(dir, "shared.pkl", pkl))
        let meta = Extractor.metadata(for: ck, sourceName: "shared.pkl")
        #expect(meta.reduce(0) { $0 + $1.1.utf8.count } < (1 << 20) + 100_000)
        // A memoised list shared by two entries is one value.
        var w = PickleWriter(protocol: 2)
        w.emptyDict()
        w.setItems { p in
            p.str("a"); p.mark(); for i in 0..<100 { p.int(i) }; p.op("l"); p.binPut(1)
            p.str("b"); p.binGet(1)
        }
        w.stop()
        let two = SharedValuePrinter().json(try unpickle(w.bytes), path: "").serialized()
        #expect(two.contains("\"b\":\"<shared: same as a>\""), "\(two.prefix(200))")
        #expect(MonotonicClock.seconds() - start < 20)
    }

    @Test func sharedContainersStillRespectTheDepthLimit() throws {
        // L0 = [], L(i) = [L(i-1)] through the memo, 300 levels: converted once each, yet too deep.
        var w = PickleWriter(protocol: 2)
        w.emptyList(); w.longBinPut(0)
        for i in 1..<300 { w.mark(); w.longBinGet(UInt32(i - 1)); w.op("l"); w.longBinPut(UInt32(i)) }
        w.stop()
        let e = try #require(throws: BLError.self) { _ = try unpickle(w.bytes) }
        #expect(e.message.contains("nested deeper than"), "\(e)")
        // The same object referenced from many places at a shallow depth is fine.
        var ok = PickleWriter(protocol: 2)
        ok.emptyList(); ok.longBinPut(0)
        for i in 1..<150 { ok.mark(); ok.longBinGet(UInt32(i - 1)); ok.op("l"); ok.longBinPut(UInt32(i)) }
        ok.op("0")  // POP
        ok.mark(); for _ in 0..<40 { ok.longBinGet(100) }; ok.op("l")
        ok.stop()
        guard case .list(let xs) = try unpickle(ok.bytes) else { Issue.record("not a list"); return }
        #expect(xs.count == 40)
    }

    @Test func largeMemoisedKeysAreNotRehashedPerInsert() throws {
        for container: Character in ["s", "d"] {
            let pkl = Self.sharedStringPickle(length: 1 << 20, repeats: 20_000, container: container)
            let start = MonotonicClock.seconds()
            let v = try unpickle(pkl)
            #expect(MonotonicClock.seconds() - start < 3, "\(container)")
            if container == "d", case .dict(let items) = v { #expect(items.count == 1 && items[0].value.intValue == 19_999) }
            if container == "s", case .object(_, let args) = v, case .list(let xs)? = args.first { #expect(xs.count == 1) }
        }
        // Keys that differ only between the sampled bytes are still told apart.
        var w = PickleWriter(protocol: 2)
        w.emptyDict()
        w.setItems { p in
            for i in 0..<50 {
                var s = Array(repeating: UInt8(ascii: "k"), count: 4000)
                s[1000 + i] = UInt8(ascii: "x")
                p.str(String(decoding: s, as: UTF8.self)); p.int(i)
            }
        }
        w.stop()
        guard case .dict(let items) = try unpickle(w.bytes) else { Issue.record("not a dict"); return }
        #expect(items.count == 50)
    }

    // MARK: 12 and 21. zip members

    @Test func manyStoragesLoadInLinearTime() throws {
        let n = 60_000
        var w = PickleWriter(protocol: 2)
        w.emptyDict()
        w.setItems { p in
            for i in 0..<n { p.str("t\(i)"); p.tensor(key: String(i), numel: 1, shape: [1], strides: [1]) }
        }
        w.stop()
        let bytes = ZipWriter.checkpoint(pickle: w.bytes, storages: (0..<n).map { (String($0), floatBytes([Float($0)])) })
        let start = MonotonicClock.seconds()
        let v = try Self.load(bytes)
        #expect(v.flattened().tensors.count == n)
        let seconds = MonotonicClock.seconds() - start
        #expect(seconds < 15, "\(seconds) s")
        print("zip with \(n) storages read in \(Format3.s(seconds)) s")
    }

    @Test func duplicateMemberNamesAreRefused() throws {
        let good = PickleWriter.stateDict([("w", "0", 1, 0, [1], [1])])
        var z = ZipWriter()
        z.add("archive/data.pkl", good)
        z.add("archive/data/0", floatBytes([1]))
        z.add("archive/data.pkl", good)
        let e = try #require(throws: BLError.self) { _ = try Self.load(z.bytes()) }
        #expect(e.message.contains("two members named 'archive/data.pkl'"), "\(e)")
    }

    // MARK: 13. FIFOs and devices

    @Test func nonRegularFilesAreRefusedWithoutBlocking() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        try #require(mkfifo(fifo, 0o600) == 0)
        let pkg = dir + "/pkg"
        try FileManager.default.createDirectory(atPath: pkg, withIntermediateDirectories: true)
        for f in [ModelPackage.graphFile, ModelPackage.metadataFile, ModelPackage.weightsFile] { _ = mkfifo(pkg + "/" + f, 0o600) }
        let frames = dir + "/frames"
        try FileManager.default.createDirectory(atPath: frames, withIntermediateDirectories: true)
        _ = mkfifo(frames + "/00001.png", 0o600)
        let attempts: [(String, @Sendable () throws -> Void)] = [
            ("mapped file", { _ = try MappedFile(path: fifo) }),
            ("checkpoint", { _ = try Checkpoint.open(path: fifo) }),
            ("safetensors", { _ = try SafetensorsFile.load(path: fifo) }),
            ("npy", { _ = try NPYReader.load(path: fifo) }),
            ("image", { _ = try ImageDecoder.decode(path: fifo) }),
            ("package", { _ = try ModelPackage.read(pkg) }),
            ("frame folder", { _ = try Preprocessing(frames: 1).clipTensor(fromFolder: frames) }),
            ("device", { _ = try MappedFile(path: "/dev/zero") }),
        ]
        for (what, body) in attempts {
            let outcome = Locked<String>("not run")
            let returned = finishes(within: 10) {
                do { try body(); outcome.withLock { $0 = "loaded" } } catch { outcome.withLock { $0 = "\(error)" } }
            }
            #expect(returned, "\(what) blocked")
            let text = outcome.withLock { $0 }
            #expect(text.contains("not a regular file"), "\(what): \(text)")
        }
    }

    // MARK: 15. graph validation

    @Test func graphValidationIsLinearInNodesAndWeights() throws {
        var g = Graph()
        g.add(.input(frames: 1, channels: 8), [])
        var last = 0
        for i in 0..<20_000 {
            let op = Op.batchNorm(BatchNorm(channels: 8, weight: "bn\(i).w", bias: "bn\(i).b", runningMean: "bn\(i).m",
                                            runningVar: "bn\(i).v", eps: 1e-5))
            g.declareWeights(of: op)
            last = g.add(op, [last])
        }
        g.output = last
        let start = MonotonicClock.seconds()
        try g.validateStructure()
        let seconds = MonotonicClock.seconds() - start
        #expect(seconds < 2, "\(seconds) s")
        print("graph of 20001 nodes and 80000 weights validated in \(Format3.s(seconds)) s")
    }

    // MARK: 22. what extract writes

    @Test func writerRefusesWhatReadersRefuse() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = try Tensor(dtype: .float32, shape: [0, 1 << 62], storage: ByteStorage(copying: []))
        let e = try #require(throws: BLError.self) {
            try SafetensorsWriter.write([(name: "e", tensor: empty)], to: dir + "/a.safetensors")
        }
        #expect(e.message.contains("too large"), "\(e)")
        let t = try Tensor.fromFloats([1], shape: [1])
        let big = String(repeating: "m", count: SafetensorsFile.maxHeaderLength + 1)
        let h = try #require(throws: BLError.self) {
            try SafetensorsWriter.write([(name: "t", tensor: t)], metadata: [("m", big)], to: dir + "/b.safetensors")
        }
        #expect(h.message.contains("header"), "\(h)")
        #expect(listing(dir).isEmpty, "\(listing(dir))")
        // Through extract: a [0, 2^62] tensor of a checkpoint.
        let pkl = PickleWriter.stateDict([("e", "0", 1, 0, [0, 1 << 62], [1, 1])])
        let ck = try Checkpoint.open(path: writeFile(dir, "e.pth", ZipWriter.checkpoint(pickle: pkl, storages: [("0", floatBytes([0]))])))
        #expect(throws: BLError.self) { _ = try Extractor.extract(ck, sourceName: "e.pth", to: dir + "/e.safetensors") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/e.safetensors"))
    }

    // MARK: 23. messages

    @Test func oversizedSafetensorsHeaderIsNamed() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try writeFile(dir, "big.safetensors", le64(200_000_000) + Array("{\"a\":1}".utf8))
        let e = try #require(throws: BLError.self) { _ = try Checkpoint.open(path: path) }
        #expect(e.message.contains("header length 200000000 exceeds the limit"), "\(e)")
    }

    @Test func protocol0And1PicklesAreRecognised() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for p in 0...1 {
            let path = try writeFile(dir, "p\(p).pkl", bytes(hex: PickleTests.protocols[p]))
            let ck = try Checkpoint.open(path: path)
            #expect(ck.format == .pickle)
            #expect(sameValue(try #require(ck.root), PickleTests.expected))
        }
    }

    @Test func frameFoldersStayInsideAndDoNotReserveClaimedCounts() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let png = PNGWriter.png(width: 2, height: 2, depth: 8, colorType: 2, rows: [[UInt8](repeating: 9, count: 6), [UInt8](repeating: 9, count: 6)])
        let outside = try writeFile(dir, "outside.png", png)
        let folder = dir + "/frames"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeFile(folder, "00001.png", png)
        try FileManager.default.createSymbolicLink(atPath: folder + "/00002.png", withDestinationPath: outside)
        let e = try #require(throws: BLError.self) { _ = try FrameFolder(path: folder) }
        #expect(e.message.contains("outside the frame folder"), "\(e)")
        // A link to a frame inside the folder is fine.
        try FileManager.default.removeItem(atPath: folder + "/00002.png")
        try FileManager.default.createSymbolicLink(atPath: folder + "/00002.png", withDestinationPath: folder + "/00001.png")
        #expect(try FrameFolder(path: folder).frameCount == 2)
        // 999999999.png alone: a gap is reported without reserving a billion entries.
        let sparse = dir + "/sparse"
        try FileManager.default.createDirectory(atPath: sparse, withIntermediateDirectories: true)
        try writeFile(sparse, "999999999.png", png)
        let start = MonotonicClock.seconds()
        let g = try #require(throws: BLError.self) { _ = try FrameFolder(path: sparse) }
        #expect(g.message.contains("frame 1 is missing"), "\(g)")
        #expect(MonotonicClock.seconds() - start < 1)
    }
}

/// Raw deflate of `n` zeros, by hand: one fixed-Huffman block, a literal 0, then length-258
/// matches at distance 1 (13 bits each), the remainder as literals.
enum Deflate {
    static func zeros(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        var acc: UInt64 = 0, bits = 0
        func put(_ v: UInt64, _ count: Int) {
            acc |= v << UInt64(bits); bits += count
            while bits >= 8 { out.append(UInt8(acc & 0xff)); acc >>= 8; bits -= 8 }
        }
        /// Huffman codes are written most significant bit first.
        func code(_ v: UInt64, _ count: Int) {
            var r: UInt64 = 0
            for i in 0..<count { r |= ((v >> UInt64(i)) & 1) << UInt64(count - 1 - i) }
            put(r, count)
        }
        put(1, 1)      // BFINAL
        put(1, 2)      // BTYPE = fixed Huffman
        code(0x30, 8)  // literal 0
        var left = n - 1
        while left >= 258 {
            code(0b11000101, 8)  // length code 285 = 258
            code(0, 5)           // distance code 0 = 1
            left -= 258
        }
        while left > 0 { code(0x30, 8); left -= 1 }
        code(0, 7)     // end of block (256)
        if bits > 0 { out.append(UInt8(acc & 0xff)) }
        return out
    }
}

/// Seconds with three decimals, for the timings the tests print.
enum Format3 {
    static func s(_ x: Double) -> String { String(Double(Int(x * 1000)) / 1000) }
}
