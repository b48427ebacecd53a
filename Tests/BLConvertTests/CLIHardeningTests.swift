import Testing
import BLTestSupport
import Foundation
@testable import BLCore
@testable import BLPickle
@testable import BLTorch
@testable import BLSafetensors
@testable import BLCheckpoint
@testable import BLVNet
@testable import BLCommands
@testable import BLConvert

/// Issue 12: data loss, wrong results and careless input, through the command line.
@Suite struct CLIHardeningTests {
    static func tempDir() throws -> String { try TestData.temporaryDirectory() }

    /// A copy of the mini package in a fresh folder (tests may damage it).
    static func packageCopy(_ dir: String) throws -> String {
        let src = try CLIFixtures.miniPackage("f32")
        let dst = dir + "/pkg.blc"
        try FileManager.default.copyItem(atPath: src, toPath: dst)
        return dst
    }

    // MARK: 1. a bad clip does not lose the others' verdicts

    @Test func verifyReportsAClipWithBadJSONBesideTheGoodOnes() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let header = Array(#"{"\ud800\u0041":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        let bad = try writeFile(dir, "bad.safetensors", le64(UInt64(header.count)) + header + floatBytes([0]))
        let r = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), CLIFixtures.miniClips[0], bad, "--json"])
        #expect(r.status == 2, "\(r.stderr)")
        let clips = r.json?["clips"] as? [[String: Any]]
        #expect(clips?.count == 1 && clips?.first?["passed"] as? Bool == true, "\(r.stdout.prefix(400))")
        #expect((r.json?["errors"] as? [[String: Any]])?.count == 1)
    }

    // MARK: 3. numbers beyond Int64

    @Test func formattingIsTotal() {
        for x in [1e30, -1e30, 9.3e18, -9.3e18, Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude,
                  Double.leastNonzeroMagnitude, 1e15, 999_999_999_999_999.9, .infinity, -.infinity, .nan, 0, -0.0] {
            for d in [0, 2, 4, 8] { #expect(!Format.fixed(x, d).isEmpty) }
            #expect(!Format.sci(x).isEmpty)
        }
        #expect(Format.fixed(1e30, 2) == "1.0e+30")
        #expect(Format.fixed(12.345, 2) == "12.35" || Format.fixed(12.345, 2) == "12.34")
        #expect(Format.fixed(-0.5, 0) == "-1" || Format.fixed(-0.5, 0) == "-0" || Format.fixed(-0.5, 0) == "0")
    }

    @Test func runPrintsLogitsBeyondInt64() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clip = try SafetensorsFile.load(path: CLIFixtures.miniClips[0])
        let input = try #require(clip.tensor("input"))
        let scaled = try Tensor.fromFloats(input.floats().map { $0 * 1e22 }, shape: input.shape)
        let path = dir + "/huge.safetensors"
        try writeSafetensors([(name: "input", tensor: scaled)], to: path)
        let pkg = try CLIFixtures.miniPackage("f32")
        for json in [false, true] {
            let r = CLI.run(["run", pkg, path] + (json ? ["--json"] : []))
            #expect(r.status == 0, "\(r.stderr)")
            if json { #expect(r.json != nil, "\(r.stdout.prefix(300))") } else { #expect(r.stdout.contains("logit")) }
        }
    }

    // MARK: 17. outputs never replace inputs

    @Test func outputsInsideInputsAreRefused() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pkg = try Self.packageCopy(dir)
        let weights = pkg + "/weights.safetensors"
        let before = try sha256(weights)
        let clips = dir + "/clips"
        try FileManager.default.createDirectory(atPath: clips, withIntermediateDirectories: true)
        for (i, c) in CLIFixtures.miniClips.prefix(2).enumerated() { try FileManager.default.copyItem(atPath: c, toPath: clips + "/clip\(i).safetensors") }
        let clipBefore = try sha256(clips + "/clip1.safetensors")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.xml", withDestinationPath: weights)
        let cases: [[String]] = [
            ["verify", pkg, CLIFixtures.miniClips[0], "--junit", weights],
            ["verify", pkg, CLIFixtures.miniClips[0], "--junit", pkg + "/report.xml"],
            ["verify", pkg, CLIFixtures.miniClips[0], "--junit", dir + "/link.xml"],
            ["verify", pkg, clips, "--junit", clips + "/clip1.safetensors"],
            ["verify", pkg, clips, "--junit", clips + "/new.xml"],
            ["run", pkg, CLIFixtures.miniClips[0], "--output", weights],
            ["run", pkg, CLIFixtures.miniClips[0], "--output", pkg + "/../pkg.blc/out.safetensors"],
            ["extract", pkg + "/./weights.safetensors", "-o", weights],
        ]
        for args in cases {
            let r = CLI.run(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("input"), "\(args): \(r.stderr)")
        }
        #expect(try sha256(weights) == before)
        #expect(try sha256(clips + "/clip1.safetensors") == clipBefore)
        // (The kernel cache is there where this CPU runs the packed kernels.)
        #expect(listing(pkg).subtracting(["kernels.safetensors"]) == Set(["graph.json", "weights.safetensors", "metadata.json"]))
        // import over a folder that holds the checkpoint.
        let holder = dir + "/holder.blc"
        try FileManager.default.copyItem(atPath: pkg, toPath: holder)
        try FileManager.default.copyItem(atPath: CLIFixtures.miniCheckpoint, toPath: holder + "/model.pth.tar")
        let r = CLI.run(["import", holder + "/model.pth.tar", "-o", holder, "--frames", "8", "--force"])
        #expect(r.status == 2 && FileManager.default.fileExists(atPath: holder + "/model.pth.tar"), "\(r.stderr)")
        // The rule itself.
        #expect(throws: BLError.self) { try OutputPath.check(dir + "/./pkg.blc/graph.json", option: "-o", inputs: [pkg]) }
        try OutputPath.check(dir + "/elsewhere.xml", option: "-o", inputs: [pkg, clips])
    }

    // MARK: 18. planted links

    @Test func junitNeverWritesThroughAPlantedLink() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = try writeFile(dir, "victim.txt", Array("keep".utf8))
        let report = dir + "/report.xml"
        // The old predictable name, and a link at the report path itself.
        try FileManager.default.createSymbolicLink(atPath: report + ".tmp-\(getpid())", withDestinationPath: victim)
        let r = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), CLIFixtures.miniClips[0], "--junit", report])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")
        #expect(try String(contentsOfFile: report, encoding: .utf8).contains("<testsuite"))
        let temp = AtomicFile.temporaryName(for: dir + "/x")
        #expect(temp.hasPrefix(dir + "/.x.tmp-\(getpid())-") && temp != AtomicFile.temporaryName(for: dir + "/x"))
    }

    // MARK: 19. killed commands

    /// Starts `blconvert import` of the mini checkpoint into `out` (SIGINT, SIGTERM and SIGHUP at
    /// their default actions, as a shell starts a command: the test runner may ignore some, and an
    /// ignored signal stays ignored across exec), waits for its temporary package to appear, sends
    /// `signal`; returns whether it landed while the temporary existed, and the raw wait status.
    static func killImport(_ out: String, signal: Int32) throws -> (landed: Bool, status: Int32) {
        let binary = try #require(CLI.binary, "the blconvert executable was not built")
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t(), none = sigset_t()
        sigemptyset(&defaults)
        sigemptyset(&none)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let args = [binary, "import", CLIFixtures.miniCheckpoint, "-o", out, "--frames", "8"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        try #require(posix_spawn(&pid, binary, &actions, &attr, &argv, environ) == 0)
        let dir = (out as NSString).deletingLastPathComponent, base = (out as NSString).lastPathComponent
        var sent = false, status: Int32 = 0
        let deadline = MonotonicClock.seconds() + 60
        while MonotonicClock.seconds() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return (false, status) }
            if listing(dir).contains(where: { $0.hasPrefix(".\(base).tmp-\(pid)-") }) {
                kill(pid, signal)
                sent = true
                break
            }
            usleep(500)
        }
        if !sent { kill(pid, SIGKILL) }
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signalled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        return (sent && signalled && (status & 0x7f) == signal, status)
    }

    @Test func signalsRemoveTemporaryOutputs() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            var landed = false
            for attempt in 0..<6 where !landed {
                let out = dir + "/m\(sig)-\(attempt).blc"
                let r = try Self.killImport(out, signal: sig)
                landed = r.landed
                try? FileManager.default.removeItem(atPath: out)
                #expect(!listing(dir).contains { $0.contains(".tmp-") }, "signal \(sig): \(listing(dir))")
            }
            #expect(landed, "signal \(sig) never reached an import in flight")
        }
    }

    @Test func aKilledRunsTemporariesAreRemovedByTheNextRun() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/k.blc"
        var landed = false
        for _ in 0..<6 where !landed { landed = try Self.killImport(out, signal: SIGKILL).landed }
        try #require(landed, "SIGKILL never reached an import in flight")
        #expect(listing(dir).contains { $0.hasPrefix(".k.blc.tmp-") }, "SIGKILL leaves the temporary package")
        // Another destination's and a live process's temporaries stay.
        let other = try writeFile(dir, ".other.blc.tmp-\(getpid())-abc", [1])
        let live = try writeFile(dir, ".k.blc.tmp-1-abc", [1])
        let r = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", out, "--frames", "8"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(listing(dir) == Set(["k.blc", (other as NSString).lastPathComponent, (live as NSString).lastPathComponent]), "\(listing(dir))")
        // Files too (extract's temporaries), named for a process that has ended.
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let stale = try writeFile(dir, ".x.safetensors.tmp-\(ended.processIdentifier)-0123abcd", [1, 2, 3])
        try AtomicFile.write("new", to: dir + "/x.safetensors")
        #expect(!FileManager.default.fileExists(atPath: stale))
        // What the signal handler runs, removing registered paths (this test's only: the tests
        // running beside it in this process have temporaries of their own registered).
        let tmp = try AtomicDirectory.temporarySibling(of: dir + "/t.blc")
        try writeFile(tmp, "graph.json", [1])
        TemporaryOutputs.removeRegistered(under: dir + "/")
        #expect(!FileManager.default.fileExists(atPath: tmp))
    }

    // MARK: 20. a reference must be finite

    @Test func verifyRefusesNonFiniteReferences() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clip = try SafetensorsFile.load(path: CLIFixtures.miniClips[0])
        for bad in [Double.nan, .infinity] {
            var tensors = clip.tensors
            let i = try #require(tensors.firstIndex { $0.name == "logits_f64" })
            var values = tensors[i].tensor.doubles()
            values[0] = bad
            tensors[i].tensor = try doubleTensor(values, tensors[i].tensor.shape)
            let path = dir + "/bad-\(bad).safetensors"
            try writeSafetensors(tensors, to: path)
            let r = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), path, CLIFixtures.miniClips[1]])
            #expect(r.status == 2, "\(r.stdout)")
            #expect(r.stdout.contains("must be finite") && r.stdout.contains("1 of 2 clips pass"), "\(r.stdout)")
        }
        let npy = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), TestData.fixture("media/clip_v1.npy")])
        #expect(npy.status == 2 && npy.stdout.contains("verify needs a reference clip"), "\(npy.stdout)")
    }

    // MARK: 24. labels

    @Test func labelsFilesAsTheReferenceReadsThem() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = try writeFile(dir, "labels.txt", Array("a\r\n\r\n  b  \r\n\nc\n\n".utf8))
        #expect(try ClassLabels.read(URL(fileURLWithPath: text), classes: 3) == ["a", "b", "c"])
        let json = try writeFile(dir, "labels.json", Array(#"{"Pushing [something]": "1", "Holding": "2", "Dropping": 0}"#.utf8))
        #expect(try ClassLabels.read(URL(fileURLWithPath: json), classes: 3) == ["Dropping", "Pushing [something]", "Holding"])
        for bad in [#"{"a": "0", "b": "0"}"#, #"{"a": "0", "b": "7"}"#, #"{"a": 0}"#, #"["a", "b"]"#] {
            let p = try writeFile(dir, "bad.json", Array(bad.utf8))
            #expect(throws: BLConvertError.self, "\(bad)") { try ClassLabels.read(URL(fileURLWithPath: p), classes: 2) }
        }
    }

    // MARK: 25. whole pickled models, torch.compile names

    @Test func wholePickledModelsAreExplained() throws {
        var w = PickleWriter(protocol: 2)
        w.global("torch.nn.modules.conv", "Conv2d")
        w.op(")")
        w.op("\u{81}")  // NEWOBJ
        w.stop()
        let e = try #require(throws: BLError.self) { _ = try unpickle(w.bytes) }
        #expect(e.kind == .refused && e.message.contains("whole pickled model") && e.message.contains("nothing in it was run")
                && e.message.contains("torch.save(model.state_dict()"), "\(e)")
        var u = PickleWriter(protocol: 2)
        u.global("__main__", "Net")
        u.stop()
        let user = try #require(throws: BLError.self) { _ = try unpickle(u.bytes) }
        #expect(user.message.hasPrefix("refusing global __main__.Net") && user.message.contains("state_dict()"), "\(user)")
    }

    @Test func torchCompilePrefixAndFoundNames() throws {
        #expect(BLVNetImporter.canonicalName("_orig_mod.conv1.weight") == "baseline_model.conv1.weight")
        #expect(BLVNetImporter.canonicalName("module._orig_mod.baseline_model.fc.bias") == "baseline_model.fc.bias")
        let ck = try Checkpoint.open(path: CLIFixtures.miniCheckpoint)
        let renamed = ck.stateDict().tensors.map { (name: "_orig_mod." + $0.name, tensor: $0.tensor) }
        let model = try CheckpointImport.importModel(tensors: renamed, frames: 8)
        #expect(model.config.numClasses > 0)
        let foreign = try Tensor.fromFloats([1, 2], shape: [2])
        let e = try #require(throws: BLError.self) {
            _ = try CheckpointImport.importModel(tensors: [(name: "encoder.layer.0.weight", tensor: foreign)], frames: 8)
        }
        #expect(e.message.contains("found 1 tensors, e.g. 'baseline_model.encoder.layer.0.weight'"), "\(e)")
    }

    // MARK: 26. contradicting settings, careless paths

    @Test func contradictingSettingsWarn() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let named = dir + "/mini-a2-b4-f2x2.pth.tar"  // the name says T = 4
        try FileManager.default.copyItem(atPath: CLIFixtures.miniCheckpoint, toPath: named)
        let r = CLI.run(["import", named, "-o", dir + "/a.blc", "--frames", "8"])
        #expect(r.status == 0 && r.stderr.contains("warning: --frames 8 differs from the T = 4"), "\(r.stderr)")
        let pkg = try CLIFixtures.miniPackage("f32")
        let g = CLI.run(["graph", pkg, "--input", "64x"])
        #expect(g.status == 0 && g.stderr.contains("using 64x64"), "\(g.stderr)")
        let s = CLI.run(["run", pkg, CLIFixtures.miniClips[0], "--scale", "100"])
        #expect(s.stderr.contains("warning: --scale 100 is below the 224 x 224 crop"), "\(s.stderr)")
        // Half-precision weights asked to be stored as f16.
        let half = try Checkpoint.open(path: CLIFixtures.miniCheckpoint).stateDict().tensors.map {
            (name: $0.name, tensor: try $0.tensor.converted(to: .float16))
        }
        let halfPath = dir + "/half.safetensors"
        try writeSafetensors(half, to: halfPath)
        let h = CLI.run(["import", halfPath, "-o", dir + "/h.blc", "--frames", "8", "--dtype", "f16"])
        #expect(h.status == 0 && h.stderr.contains("already float16") && h.stderr.contains("--no-optimize keeps them"), "\(h.stderr)")
        let quiet = CLI.run(["import", halfPath, "-o", dir + "/q.blc", "--frames", "8", "--dtype", "f16", "--no-optimize"])
        #expect(quiet.status == 0 && !quiet.stderr.contains("warning"), "\(quiet.stderr)")
    }

    @Test func carelessPathsGetClearMessages() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", dir + "/missing/dir/x.blc", "--frames", "8"])
        #expect(r.status == 2 && r.stderr.contains("the folder \(dir)/missing/dir does not exist"), "\(r.stderr)")
        #expect(!r.stderr.contains(".tmp-"))
        let pkg = try CLIFixtures.miniPackage("f32")
        let i = CLI.run(["inspect", pkg])
        #expect(i.status == 0 && i.stdout.contains("blconvert model package") && i.stdout.contains("nodes"), "\(i.stdout)")
        let j = CLI.run(["inspect", pkg, "--json"])
        #expect(j.json?["format"] as? String == "blconvert-package")
    }
}
