import Testing
import BLTestSupport
import Foundation
@testable import BLCore
@testable import BLPickle
@testable import BLTorch
@testable import BLCheckpoint

/// Issue 12, item 27: a scanner's corpus of malicious pickles, generated here (every protocol,
/// every opcode that names or calls a global, hidden behind the memo, in zip members, after a
/// benign pickle's STOP). Every one is refused and the marker file is never created.
@Suite struct ScannerCorpusTests {
    static let marker = "/tmp/blconvert-evil-marker"
    static let command = "touch \(marker)"
    static let globals: [(String, String)] = [
        ("posix", "system"), ("os", "system"), ("nt", "system"), ("builtins", "eval"), ("builtins", "exec"),
        ("__builtin__", "eval"), ("builtins", "getattr"), ("builtins", "__import__"), ("subprocess", "Popen"),
        ("subprocess", "check_output"), ("requests.api", "get"), ("runpy", "_run_code"), ("pickle", "loads"),
        ("webbrowser", "open"), ("socket", "create_connection"), ("shutil", "rmtree"), ("operator", "attrgetter"),
        ("torch", "load"), ("torch.serialization", "load"), ("torch._C", "_set_grad_enabled"), ("numpy", "load"),
        ("numpy.testing._private.utils", "runstring"), ("pip", "main"), ("aiohttp.client", "ClientSession"),
    ]

    /// One pickle calling `module.name(command)` by `how`, in protocol `proto`.
    static func evil(_ module: String, _ name: String, how: String, proto: Int) -> [UInt8] {
        var w = PickleWriter(protocol: proto)
        func pushGlobal(_ w: inout PickleWriter) {
            if how == "stack_global" {
                w.str(module); w.str(name); w.op("\u{93}")
            } else {
                w.global(module, name)
            }
        }
        switch how {
        case "global", "stack_global":
            pushGlobal(&w)
            w.tuple { $0.str(command) }
            w.reduce()
        case "memo":
            pushGlobal(&w)
            w.binPut(3)
            w.op("0")  // POP
            w.binGet(3)
            w.tuple { $0.str(command) }
            w.reduce()
        case "inst":
            w.mark(); w.str(command); w.op("i"); w.line(module); w.line(name)
        case "obj":
            w.mark(); pushGlobal(&w); w.str(command); w.op("o")
        case "newobj":
            pushGlobal(&w); w.tuple { $0.str(command) }; w.op("\u{81}")
        case "newobj_ex":
            pushGlobal(&w); w.tuple { $0.str(command) }; w.emptyDict(); w.op("\u{92}")
        case "build":
            // An allowed object whose state is the call.
            w.global("collections", "OrderedDict"); w.op(")"); w.reduce()
            pushGlobal(&w); w.tuple { $0.str(command) }; w.reduce()
            w.op("b")
        case "nested":
            // The call inside a dict inside a list.
            w.emptyList(); w.mark(); w.emptyDict(); w.str("k"); pushGlobal(&w); w.tuple { $0.str(command) }; w.reduce(); w.op("s"); w.op("e")
        default:
            Issue.record("unknown technique \(how)")
        }
        w.stop()
        return w.bytes
    }

    static let techniques = ["global", "stack_global", "memo", "inst", "obj", "newobj", "newobj_ex", "build", "nested"]

    /// Every way blconvert reads a file, on `bytes` written to `dir/name`: none may load it.
    static func expectRefused(_ bytes: [UInt8], _ what: String, in dir: String, global: String? = nil) throws {
        let path = try writeFile(dir, "case.pkl", bytes)
        do {
            let ck = try Checkpoint.open(path: path)
            Issue.record("\(what): loaded as \(ck.format)")
        } catch let e as BLError {
            #expect(e.kind == .refused || e.kind == .format || e.kind == .unsupported, "\(what): \(e)")
            if let global { #expect(e.message.contains("refusing global \(global)"), "\(what): \(e)") }
        }
        // As the data.pkl of a torch zip checkpoint.
        let zip = try writeFile(dir, "case.pth", ZipWriter.checkpoint(pickle: bytes, storages: []))
        #expect(throws: BLError.self, "\(what) in a zip") { _ = try TorchFile.load(path: zip) }
        let r = CLI.run(["inspect", path])
        #expect(r.status == 2, "\(what): inspect exited \(r.status)")
    }

    @Test func generatedMaliciousPicklesAreAllRefused() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var count = 0
        for proto in [0, 1, 2, 4, 5] {
            for how in Self.techniques {
                for (m, n) in Self.globals {
                    let b = Self.evil(m, n, how: how, proto: proto)
                    try Self.expectRefused(b, "protocol \(proto) \(how) \(m).\(n)", in: dir, global: "\(m).\(n)")
                    count += 1
                }
            }
        }
        // Extension codes name globals through a registry: refused whatever they name.
        for ext in [[0x82, 0x01], [0x83, 0x01, 0x00], [0x84, 0x01, 0x00, 0x00, 0x00]] as [[UInt8]] {
            var w = PickleWriter(protocol: 2)
            w.raw(ext); w.tuple { $0.str(Self.command) }; w.reduce(); w.stop()
            let e = try #require(throws: BLError.self) { _ = try unpickle(w.bytes) }
            #expect(e.kind == .refused, "\(e)")
            count += 1
        }
        #expect(count > 1000)
        #expect(!FileManager.default.fileExists(atPath: Self.marker))
    }

    @Test func picklesAfterStopAreRefused() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var benign = PickleWriter(protocol: 2)
        benign.emptyDict(); benign.setItems { $0.str("a"); $0.int(1) }; benign.stop()
        for proto in [0, 2, 4] {
            // A benign pickle, then one calling requests.api.get (as a scanner's malicious6.pkl has it).
            let trailing = benign.bytes + Self.evil("requests.api", "get", how: "global", proto: proto)
            let e = try #require(throws: BLError.self) { _ = try unpickle(trailing) }
            #expect(e.kind == .refused && e.message.contains("refusing global requests.api.get"), "\(e)")
            try Self.expectRefused(trailing, "trailing protocol \(proto)", in: dir, global: "requests.api.get")
        }
        // Even benign following pickles, and bytes that are no pickle, are refused.
        let twice = try #require(throws: BLError.self) { _ = try unpickle(benign.bytes + benign.bytes) }
        #expect(twice.kind == .refused && twice.message.contains("holds 2 pickles"), "\(twice)")
        let junk = try #require(throws: BLError.self) { _ = try unpickle(benign.bytes + [0xff, 0x00, 0x01]) }
        #expect(junk.message.contains("3 bytes follow the pickle's STOP"), "\(junk)")
        // A benign pickle alone still loads.
        #expect(try unpickle(benign.bytes)["a"]?.intValue == 1)
        #expect(!FileManager.default.fileExists(atPath: Self.marker))
    }

    @Test func maliciousPicklesInsideContainers() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let evil = Self.evil("posix", "system", how: "global", proto: 2)
        // A zip whose data.pkl hides the call after a benign pickle, or under a longer prefix.
        var benign = PickleWriter(protocol: 2)
        benign.emptyDict(); benign.stop()
        for (name, pkl) in [("archive/data.pkl", benign.bytes + evil), ("x/data.pkl", evil)] {
            var z = ZipWriter()
            z.add(name, pkl)
            let path = try writeFile(dir, "nested.pth", z.bytes())
            let e = try #require(throws: BLError.self) { _ = try TorchFile.load(path: path) }
            #expect(e.kind == .refused, "\(name): \(e)")
        }
        // A storage member that is itself a pickle is data, never unpickled.
        let pkl = PickleWriter.stateDict([("w", "0", evil.count, 0, [evil.count], [1])])
        let bytes = ZipWriter.checkpoint(pickle: pkl, storages: [("0", evil)])
        let path = try writeFile(dir, "data.pth", bytes)
        // Declared as float storage of evil.count elements: too small a member, a format error.
        #expect(throws: BLError.self) { _ = try TorchFile.load(path: path) }
        #expect(!FileManager.default.fileExists(atPath: Self.marker))
    }
}
