import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import BLTestSupport
import ArgumentParser
import BLCore
import BLSafetensors
import BLGraph
import BLVNet
@testable import BLVerify
@testable import BLCommands
@testable import BLKernels

// End-to-end tests of the command-line tool: in-process through BLConvertCommand.parseAsRoot (fast,
// output captured) and, for what only the process shows (exit status of usage errors, clean
// stdout), through the built executable.

// MARK: - Hostile and bad input

@Suite struct CLIBadInputTests {
    /// Pickles that would run os.system / eval / exec: refused with the global named, exit 2,
    /// and the marker file they try to create never appears.
    @Test func evilFilesAreRefused() throws {
        let e = try CLIFixtures.expected()
        let marker = try #require(e["evil"]?["marker"]?.stringValue)
        let globals = try #require(e["evil"]?["globals"]?.objectValue)
        let files = try FileManager.default.contentsOfDirectory(atPath: CLIFixtures.parsers).filter { $0.hasPrefix("evil_") }.sorted()
        #expect(files.count == 9)
        for file in files {
            let stem = String(file.split(separator: ".")[0])
            let key = try #require(globals.first { stem == $0.0 || stem.hasPrefix($0.0 + "_") }, "\(file)")
            let global = try #require(key.1.stringValue)
            for command in [["inspect"], ["extract", "-o", CLIFixtures.workDir + "/evil-\(file).safetensors"],
                            ["import", "-o", CLIFixtures.workDir + "/evil-\(file).blc", "--frames", "8"]] {
                let args = [command[0], CLIFixtures.parsers + "/" + file] + command.dropFirst()
                let r = CLI.run(args)
                #expect(r.status == 2, "\(args)")
                #expect(r.stderr.contains(global) && r.stderr.contains(file), "\(args): \(r.stderr)")
                #expect(r.stdout.isEmpty)
            }
            #expect(!FileManager.default.fileExists(atPath: CLIFixtures.workDir + "/evil-\(file).safetensors"))
            #expect(!FileManager.default.fileExists(atPath: CLIFixtures.workDir + "/evil-\(file).blc"))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Truncated copies of every container format, at a few offsets: exit 2 naming the file.
    @Test func truncatedFilesFailWithTheFileNamed() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sources = ["parsers/tensors_zip.pth", "parsers/tensors_legacy.pth", "parsers/train_zip.pth.tar",
                       "parsers/tensors_flat.h5", "parsers/tensors_nested.h5", "mini-a2b4-f4x2/clip1.safetensors"]
        for source in sources {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: TestData.fixture(source)))
            let n = bytes.count
            for cut in Set([1, 7, 64, n / 3, n / 2, n - 9, n - 1]).sorted() {
                let name = "cut\(cut)-" + source.lastPathComponent
                try bytes.prefix(cut).write(to: URL(fileURLWithPath: dir + "/" + name))
                let r = CLI.run(["inspect", dir + "/" + name])
                #expect(r.status == 2, "\(name): \(r.stdout.prefix(300))")
                #expect(r.stderr.contains(name), "\(name): \(r.stderr)")
                #expect(r.stdout.isEmpty, "\(name)")
            }
        }
    }

    @Test func directoryMissingAndEmptyFilesFail() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/empty.pth", contents: Data())
        for (path, words) in [(dir, "directory"), (dir + "/missing.pth", "No such file"), (dir + "/empty.pth", "empty")] {
            for command in [["inspect", path], ["extract", path, "-o", dir + "/o.safetensors"],
                            ["import", path, "-o", dir + "/o.blc", "--frames", "8"]] {
                let r = CLI.run(command)
                #expect(r.status == 2, "\(command)")
                #expect(r.stderr.contains(path) && r.stderr.contains(words), "\(command): \(r.stderr)")
            }
        }
        #expect(listing(dir) == ["empty.pth"])
        // A directory that is not a model package, given as the model.
        let r = CLI.run(["run", dir, CLIFixtures.miniClips[0]])
        #expect(r.status == 2 && r.stderr.contains("not a model package"))
    }
}

// MARK: - import

@Suite struct CLIImportTests {
    /// The legacy checkpoint and the nested HDF5 export of the same weights give the same package.
    @Test func legacyAndNestedHDF5GiveIdenticalWeights() throws {
        let legacy = try CLIFixtures.miniPackage("f32")
        let h5 = CLIFixtures.workDir + "/mini-h5.blc"
        let r = CLI.run(["import", CLIFixtures.mini + "/model_nested.h5", "-o", h5, "--frames", "8", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json?["source_format"] as? String == "hdf5")
        let a = try SafetensorsFile.load(path: legacy + "/weights.safetensors")
        let b = try SafetensorsFile.load(path: h5 + "/weights.safetensors")
        #expect(a.tensors.count == b.tensors.count && a.tensors.count > 100)
        for t in a.tensors {
            let u = try #require(b.tensor(t.name), "\(t.name)")
            #expect(u.dtype == t.tensor.dtype && u.shape == t.tensor.shape, "\(t.name)")
            #expect(u.contiguousBytes() == t.tensor.contiguousBytes(), "\(t.name)")
        }
        // The package's configuration is the manifest's; the source is recorded with its sha256.
        let pkg = try ModelPackage.read(legacy)
        #expect(pkg.config == (try manifestConfig(CLIFixtures.mini + "/manifest.json")))
        let manifest = try CLIFixtures.readJSON(CLIFixtures.mini + "/manifest.json")
        #expect(pkg.source?.sha256 == manifest["sha256"]?["model.pth.tar"]?.stringValue)
    }

    /// T is not in the weights, and "model.pth.tar" does not name it: --frames is asked for.
    @Test func framesAreRequiredWhenNothingTellsThem() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", dir + "/m.blc"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--frames") && r.stderr.contains("model.pth.tar"), "\(r.stderr)")
        #expect(listing(dir).isEmpty)
        // A name in the released style tells T (f4x2 -> 8).
        try FileManager.default.createSymbolicLink(atPath: dir + "/bLVNet-TAM-a2-b4-f4x2.pth.tar", withDestinationPath: CLIFixtures.miniCheckpoint)
        let named = CLI.run(["import", dir + "/bLVNet-TAM-a2-b4-f4x2.pth.tar", "-o", dir + "/n.blc", "--json"])
        #expect(named.status == 0, "\(named.stderr)")
        #expect((named.json?["config"] as? [String: Any])?["frames"] as? Int == 8)

        for bad in ["7", "0", "-2"] {
            let odd = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", dir + "/o.blc", "--frames=\(bad)"])
            #expect(odd.status == 2, "\(bad)")
            #expect(odd.stderr.contains("--frames must be an even number"), "\(odd.stderr)")
        }
        let dtype = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", dir + "/o.blc", "--frames", "8", "--dtype", "int8"])
        #expect(dtype.status == 2 && dtype.stderr.contains("--dtype"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.blc"))
    }

    /// A checkpoint with one tensor removed, one renamed and one reshaped: one error lists each
    /// kind; nothing is written beside the output; the input is never modified.
    @Test func strictLoadingListsEveryProblem() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = dir + "/full.safetensors"
        #expect(CLI.run(["extract", CLIFixtures.miniCheckpoint, "-o", full]).status == 0)
        let st = try SafetensorsFile.load(path: full)
        let removed = try #require(st.tensors.first { $0.name.hasSuffix("layer2.big.0.bn1.running_var") }).name
        let renamed = try #require(st.tensors.first { $0.name.hasSuffix("layer3.little.0.conv2.weight") }).name
        let reshaped = try #require(st.tensors.first { $0.name.hasSuffix("layer1.big.0.conv2.weight") && $0.tensor.rank == 4 })
        let s = reshaped.tensor.shape
        let newShape = [s[0], s[1], s[2] * s[3]]

        func variant(_ name: String, _ edit: (String, Tensor) throws -> (String, Tensor)?) throws -> String {
            var tensors: [(name: String, tensor: Tensor)] = []
            for t in st.tensors { if let e = try edit(t.name, t.tensor) { tensors.append((e.0, e.1)) } }
            let path = dir + "/" + name
            try writeSafetensors(tensors, to: path)
            return path
        }
        func reshape(_ t: Tensor, _ shape: [Int]) throws -> Tensor {
            try Tensor(dtype: t.dtype, shape: shape, offset: t.offset, storage: t.storage)
        }
        let cases: [(String, String, [String])] = [
            (try variant("removed.safetensors") { $0 == removed ? nil : ($0, $1) }, "missing (1)", [removed]),
            (try variant("renamed.safetensors") { $0 == renamed ? ($0 + "_old", $1) : ($0, $1) }, "unexpected (1)",
             [renamed + "_old", "missing (1): " + renamed]),
            (try variant("reshaped.safetensors") { $0 == reshaped.name ? ($0, try reshape($1, newShape)) : ($0, $1) },
             "mis-shaped (1)", ["\(reshaped.name): expected \(s), found \(newShape)"]),
            (try variant("all.safetensors") { n, t in
                if n == removed { return nil }
                if n == renamed { return (n + "_old", t) }
                return n == reshaped.name ? (n, try reshape(t, newShape)) : (n, t)
            }, "missing (2)", [removed, renamed + "_old", "mis-shaped (1)", "unexpected (1)"]),
        ]
        // Unmodified, the extracted file imports like the checkpoint it came from.
        let whole = CLI.run(["import", full, "-o", dir + "/whole.blc", "--frames", "8", "--json"])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.json?["source_format"] as? String == "safetensors")
        try FileManager.default.removeItem(atPath: dir + "/whole.blc")
        for (input, heading, names) in cases {
            let before = try sha256(input)
            let listed = listing(dir)
            let r = CLI.run(["import", input, "-o", dir + "/out.blc", "--frames", "8"])
            #expect(r.status == 2, "\(input)")
            #expect(r.stderr.contains(heading), "\(input): \(r.stderr)")
            for n in names { #expect(r.stderr.contains(n), "\(input): \(n) not in \(r.stderr)") }
            #expect(r.stdout.isEmpty)
            #expect(listing(dir) == listed, "\(input): left \(listing(dir).subtracting(listed))")
            #expect(try sha256(input) == before)
        }
    }

    /// Import reads its input without changing it, and refuses to replace a package without --force.
    @Test func importNeverModifiesTheInputAndKeepsExistingOutput() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = try sha256(CLIFixtures.miniCheckpoint)
        let out = dir + "/m.blc"
        #expect(CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", out, "--frames", "8"]).status == 0)
        #expect(try sha256(CLIFixtures.miniCheckpoint) == before)
        let manifest = try CLIFixtures.readJSON(CLIFixtures.mini + "/manifest.json")
        #expect(before == manifest["sha256"]?["model.pth.tar"]?.stringValue)
        let again = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", out, "--frames", "8"])
        #expect(again.status == 2 && again.stderr.contains("--force"))
        let forced = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", out, "--frames", "8", "--force", "--no-optimize"])
        #expect(forced.status == 0)
        #expect(try ModelPackage.read(out).optimized == false)
        #expect(listing(dir) == ["m.blc"])
        // --force never replaces a directory or file that is not a package.
        let other = dir + "/documents"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: other + "/notes.txt", contents: Data("keep".utf8))
        for target in [other, other + "/notes.txt"] {
            let r = CLI.run(["import", CLIFixtures.miniCheckpoint, "-o", target, "--frames", "8", "--force"])
            #expect(r.status == 2 && r.stderr.contains("not a model package"), "\(r.stderr)")
        }
        #expect(listing(other) == ["notes.txt"] && listing(dir) == ["m.blc", "documents"])
    }

    /// --dtype f16 / bf16 store the convolution and linear weights in that dtype and every other
    /// weight (biases, BatchNorm vectors, TAM kernels) as float32; metadata.json says so.
    @Test(arguments: [("f16", DType.float16), ("bf16", DType.bfloat16)])
    func reducedPrecisionPackages(_ c: (String, DType)) throws {
        let pkg = try CLIFixtures.miniPackage(c.0, ["--dtype", c.0])
        let st = try SafetensorsFile.load(path: pkg + "/weights.safetensors")
        let f32 = try SafetensorsFile.load(path: try CLIFixtures.miniPackage("f32") + "/weights.safetensors")
        #expect(!st.tensors.isEmpty)
        #expect(Set(st.tensors.map(\.name)) == Set(f32.tensors.map(\.name)))
        let read = try ModelPackage.read(pkg)
        #expect(read.dtype == c.1)
        let half = ModelPackage.halfPrecisionWeights(in: read.graph)
        var halfBytes = 0, allBytes = 0
        for t in st.tensors {
            let full = try #require(f32.tensor(t.name)).floats()
            allBytes += t.tensor.byteCount
            if half.contains(t.name) {
                // Each stored value is the float32 weight rounded to the smaller type.
                #expect(t.tensor.dtype == c.1 && t.tensor.rank >= 2, "\(t.name)")
                let rounded = full.map { c.1 == .float16 ? HalfConversion.halfToFloat(HalfConversion.floatToHalf($0))
                                                         : HalfConversion.bfloat16ToFloat(HalfConversion.floatToBFloat16($0)) }
                #expect(t.tensor.floats() == rounded, "\(t.name)")
                halfBytes += t.tensor.byteCount
            } else {
                #expect(t.tensor.dtype == .float32 && t.tensor.floats() == full, "\(t.name)")
            }
        }
        #expect(half.contains { $0.hasSuffix("layer2.big.0.conv2.weight") } && half.contains("new_fc.weight"))
        let tamWeights = read.graph.nodes.flatMap { n -> [String] in if case .tam(let t) = n.op { return t.weights } else { return [] } }
        #expect(!tamWeights.isEmpty && half.isDisjoint(with: tamWeights) && !half.contains { $0.hasSuffix(".bias") })
        // The half-precision matrices are nearly all of the package.
        #expect(Double(halfBytes) / Double(allBytes) > 0.98, "\(halfBytes) of \(allBytes) bytes")
        let meta = try CLIFixtures.readJSON(pkg + "/metadata.json")
        #expect(meta["dtype"]?.stringValue == c.1.torchName)
        #expect(meta["dtype_policy"]?.stringValue == "conv and linear weights in \(c.1.torchName), vectors in float32")
        #expect(try CLIFixtures.readJSON(try CLIFixtures.miniPackage("f32") + "/metadata.json")["dtype_policy"] == nil)
    }

    /// Shared case: the zip checkpoint with 5 blending frames and a plain fc head.
    @Test(.enabled(if: TestData.hasShared)) func blend5ZipImportsWithItsManifestConfiguration() throws {
        let path = TestData.shared("mini-a4b2-f3x2-blend5-fc/model.pth")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifestPath = (path as NSString).deletingLastPathComponent + "/manifest.json"
        let expected = try manifestConfig(manifestPath)
        let r = CLI.run(["import", path, "-o", dir + "/a4.blc", "--frames", String(expected.frames), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json?["source_format"] as? String == "pytorch-zip")
        #expect(try ModelPackage.read(dir + "/a4.blc").config == expected)
        let clip = (path as NSString).deletingLastPathComponent + "/clip0.safetensors"
        let v = CLI.run(["verify", dir + "/a4.blc", clip])
        #expect(v.status == 0, "\(v.stdout)")
    }
}

// MARK: - verify

@Suite struct CLIVerifyTests {
    @Test func miniPackagePassesOnTheBundledClips() throws {
        let pkg = try CLIFixtures.miniPackage("f32")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let junit = dir + "/parity.xml"
        let r = CLI.run(["verify", pkg] + CLIFixtures.miniClips + ["--json", "--junit", junit])
        #expect(r.status == 0, "\(r.stdout)")
        let j = try #require(r.json, "not JSON: \(r.stdout.prefix(200))")
        #expect(j["passed"] as? Bool == true && j["clips_total"] as? Int == 3 && j["clips_passed"] as? Int == 3)
        let clips = try #require(j["clips"] as? [[String: Any]])
        let manifest = try CLIFixtures.readJSON(CLIFixtures.mini + "/manifest.json")
        for (i, clip) in clips.enumerated() {
            #expect(clip["reference"] as? String == "logits_f64")
            #expect(clip["input_shape"] as? [Int] == manifest["clips"]?.arrayValue?[i]["shape"]?.arrayValue?.compactMap(\.intValue))
            let samples = try #require(clip["samples"] as? [[String: Any]])
            let ref = try #require(try SafetensorsFile.load(path: CLIFixtures.miniClips[i]).tensor("logits_f64"))
            #expect(samples.count == ref.shape[0])
            let values = ref.doubles(), k = ref.shape[1]
            for s in samples {
                let idx = try #require(s["index"] as? Int)
                #expect(try #require(s["max_rel_error"] as? Double) <= 1e-5)
                #expect(s["top5_agree"] as? Bool == true && s["top1_agree"] as? Bool == true)
                #expect(s["reference_top5"] as? [Int] == topIndices(Array(values[(idx * k)..<((idx + 1) * k)]), 5))
            }
            let acts = try #require(clip["activations"] as? [[String: Any]])
            let compared = acts.filter { $0["max_rel_error"] != nil }
            #expect(compared.allSatisfy { ($0["max_rel_error"] as? Double ?? 1) <= 1e-5 })
            #expect(clip["first_divergence"] is NSNull)
        }
        // clip2 records every module; the optimized graph folded conv1 into bn1 and says so.
        let acts2 = try #require(clips[2]["activations"] as? [[String: Any]])
        #expect(acts2.count == 9)
        let conv1 = try #require(acts2.first { $0["module"] as? String == "baseline_model.conv1" })
        let note = try #require(conv1["note"] as? String)
        #expect(note.contains("folded") && note.contains("BatchNorm") && note.contains("--no-optimize"), "\(note)")
        #expect(conv1["compared"] as? Bool == false)
        #expect(acts2.filter { $0["max_rel_error"] != nil }.count == 8)

        // JUnit: well-formed XML with one testcase per clip, no failures.
        let xml = try Data(contentsOf: URL(fileURLWithPath: junit))
        let counter = XMLCounter()
        let parser = XMLParser(data: xml)
        parser.delegate = counter
        #expect(parser.parse(), "JUnit report is not well-formed XML")
        #expect(counter.count["testcase"] == 3 && counter.count["failure"] == nil)
        #expect(counter.count["testsuite"] == 1)
    }

    /// The unoptimized package keeps every reference module comparable: all 9 of clip2.
    @Test func unoptimizedPackageComparesEveryActivation() throws {
        let pkg = try CLIFixtures.miniPackage("noopt", ["--no-optimize"])
        let r = CLI.run(["verify", pkg, CLIFixtures.miniClips[2], "--json"])
        #expect(r.status == 0)
        let clip = try #require((r.json?["clips"] as? [[String: Any]])?.first)
        let acts = try #require(clip["activations"] as? [[String: Any]])
        #expect(acts.count == 9)
        #expect(acts.allSatisfy { $0["compared"] as? Bool == true && $0["note"] == nil && $0["passed"] as? Bool == true })
        #expect(acts.allSatisfy { ($0["max_rel_error"] as? Double ?? 1) <= 1e-5 })
        // The text report says the same.
        let text = CLI.run(["verify", pkg, CLIFixtures.miniClips[2]])
        #expect(text.stdout.contains("9 intermediate outputs compared") && text.stdout.contains("1 of 1 clips pass"))
    }

    /// Perturbed references: a wrong logit fails that clip only (exit 1); a wrong layer2
    /// activation is named as the first divergence.
    @Test func perturbedReferencesFail() throws {
        let pkg = try CLIFixtures.miniPackage("f32")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func modified(_ source: String, _ name: String, _ edit: (String, Tensor) throws -> Tensor) throws -> String {
            let st = try SafetensorsFile.load(path: source)
            let tensors = try st.tensors.map { (name: $0.name, tensor: try edit($0.name, $0.tensor)) }
            let path = dir + "/" + name
            try writeSafetensors(tensors, to: path)
            return path
        }
        let badLogits = try modified(CLIFixtures.miniClips[1], "bad_logits.safetensors") { n, t in
            guard n == "logits_f64" else { return t }
            var v = t.doubles()
            let scale = v.map(abs).max() ?? 1
            v[3] += 1e-3 * scale
            return try doubleTensor(v, t.shape)
        }
        let r = CLI.run(["verify", pkg, CLIFixtures.miniClips[0], badLogits, "--json"])
        #expect(r.status == 1)
        let clips = try #require(r.json?["clips"] as? [[String: Any]])
        #expect(clips.map { $0["passed"] as? Bool } == [true, false])
        #expect(clips[1]["file"] as? String == badLogits)
        #expect(r.json?["passed"] as? Bool == false)
        let text = CLI.run(["verify", pkg, badLogits])
        #expect(text.status == 1 && text.stdout.contains("FAIL") && text.stdout.contains("0 of 1 clips pass"))

        let badAct = try modified(CLIFixtures.miniClips[2], "bad_layer2.safetensors") { n, t in
            guard n == "act.baseline_model.layer2" else { return t }
            var v = t.floats()
            v[v.count / 2] += 0.5
            return try floatTensor(v, t.shape)
        }
        let junit = dir + "/j.xml"
        let a = CLI.run(["verify", pkg, badAct, "--json", "--junit", junit])
        #expect(a.status == 1)
        let clip = try #require((a.json?["clips"] as? [[String: Any]])?.first)
        #expect(clip["first_divergence"] as? String == "baseline_model.layer2")
        // The logits still agree: only the (perturbed) reference intermediate differs.
        #expect(try #require(clip["max_rel_error"] as? Double) <= 1e-5)
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<failure") && xml.contains("first divergence: baseline_model.layer2"))
    }

    /// Inputs the model cannot take: wrong T*C, NaN: exit 2 naming the clip.
    @Test func badClipInputsAreBadInput() throws {
        let pkg = try CLIFixtures.miniPackage("f32")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let st = try SafetensorsFile.load(path: CLIFixtures.miniClips[2])
        let input = try #require(st.tensor("input"))
        let s = input.shape
        var values = input.floats()
        let wrongTC = try floatTensor(Array(values[0..<(s[0] * (s[1] - 3) * s[2] * s[3])]), [s[0], s[1] - 3, s[2], s[3]])
        values[values.count / 3] = .nan
        let nan = try floatTensor(values, s)
        for (name, t) in [("wrong_tc.safetensors", wrongTC), ("nan.safetensors", nan)] {
            let tensors = st.tensors.map { (name: $0.name, tensor: $0.name == "input" ? t : $0.tensor) }
            try writeSafetensors(tensors, to: dir + "/" + name)
            let r = CLI.run(["verify", pkg, dir + "/" + name, "--json"])
            #expect(r.status == 2, "\(name)")
            #expect(r.stderr.contains(name), "\(r.stderr)")
            #expect(r.json?["passed"] as? Bool == false && r.json?["clips_unreadable"] as? Int == 1, "\(r.stdout)")
            #expect((r.json?["errors"] as? [[String: Any]])?.first?["file"] as? String == dir + "/" + name)
        }
        let r = CLI.run(["verify", pkg, dir + "/wrong_tc.safetensors"])
        #expect(r.stderr.contains("T*C = 8*3 = 24"), "\(r.stderr)")
        // A bad clip among good ones: the good ones are still checked and reported, the run exits 2.
        let junit = dir + "/parity.xml"
        let mixed = CLI.run(["verify", pkg, CLIFixtures.miniClips[0], dir + "/nan.safetensors", CLIFixtures.miniClips[1],
                             "--json", "--junit", junit])
        #expect(mixed.status == 2)
        #expect(mixed.json?["clips_passed"] as? Int == 2 && mixed.json?["clips_total"] as? Int == 3, "\(mixed.stdout)")
        let checked = (mixed.json?["clips"] as? [[String: Any]])?.compactMap { $0["file"] as? String }
        #expect(checked == [CLIFixtures.miniClips[0], CLIFixtures.miniClips[1]])
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("tests=\"3\" failures=\"0\" errors=\"1\"") && xml.contains("<error type="), "\(xml)")
        let table = CLI.run(["verify", pkg, CLIFixtures.miniClips[0], dir + "/nan.safetensors"])
        #expect(table.status == 2 && table.stdout.contains("nan.safetensors") && table.stdout.contains("not checked: "), "\(table.stdout)")
        #expect(table.stdout.contains("1 of 2 clips pass") && table.stdout.contains("1 could not be checked"), "\(table.stdout)")
        let missing = CLI.run(["verify", pkg, CLIFixtures.miniCheckpoint])
        #expect(missing.status == 2)
        #expect(CLI.run(["verify", pkg]).status == 2)
    }

    /// A folder stands for the clip files in it.
    @Test func clipFolder() throws {
        let r = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), CLIFixtures.mini, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = (r.json?["clips"] as? [[String: Any]])?.compactMap { $0["file"] as? String }
        #expect(files == CLIFixtures.miniClips.map { CLIFixtures.mini + "/" + $0.lastPathComponent })
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), dir])
        #expect(empty.status == 2 && empty.stderr.contains("no .safetensors"))
    }

    /// Verifying straight from the checkpoint (imported in memory) works too.
    @Test func verifyDirectlyOnTheCheckpoint() throws {
        let r = CLI.run(["verify", CLIFixtures.miniCheckpoint, "--frames", "8"] + CLIFixtures.miniClips + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json?["clips_passed"] as? Int == 3)
        let noFrames = CLI.run(["verify", CLIFixtures.miniCheckpoint, CLIFixtures.miniClips[0]])
        #expect(noFrames.status == 2 && noFrames.stderr.contains("--frames"))
        let wrongFrames = CLI.run(["verify", try CLIFixtures.miniPackage("f32"), "--frames", "16", CLIFixtures.miniClips[0]])
        #expect(wrongFrames.status == 2 && wrongFrames.stderr.contains("T = 8"))
    }
}

// MARK: - run

@Suite struct CLIRunTests {
    @Test func clipTopFiveMatchesTheReference() throws {
        let pkg = try CLIFixtures.miniPackage("f32")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clipPath = CLIFixtures.miniClips[0]
        let clip = try SafetensorsFile.load(path: clipPath)
        let ref = try #require(clip.tensor("logits_f64"))
        let (n, k) = (ref.shape[0], ref.shape[1])
        let refValues = ref.doubles()
        let out = dir + "/out.safetensors"
        let r = CLI.run(["run", pkg, clipPath, "--json", "--output", out])
        #expect(r.status == 0, "\(r.stderr)")
        let samples = try #require(r.json?["samples"] as? [[String: Any]])
        #expect(samples.count == n)
        for (s, sample) in samples.enumerated() {
            let top = try #require(sample["top"] as? [[String: Any]])
            #expect(top.compactMap { $0["class"] as? Int } == topIndices(Array(refValues[(s * k)..<((s + 1) * k)]), 5))
            let p = top.compactMap { $0["probability"] as? Double }
            #expect(p.count == 5 && p == p.sorted(by: >) && p.allSatisfy { $0 > 0 && $0 < 1 })
        }
        // --output: the logits [N, classes] F32 and the input, as given.
        let o = try SafetensorsFile.load(path: out)
        let logits = try #require(o.tensor("logits"))
        #expect(logits.dtype == .float32 && logits.shape == [n, k])
        #expect(maxRelative(logits.doubles(), refValues) <= 1e-5)
        #expect(try #require(o.tensor("input")).floats() == (try #require(clip.tensor("input"))).floats())

        // Labels: as many lines as classes (names printed), else exit 2.
        let labels = dir + "/labels.txt"
        try (0..<k).map { "action \($0)" }.joined(separator: "\n").write(toFile: labels, atomically: true, encoding: .utf8)
        let named = CLI.run(["run", pkg, clipPath, "--labels", labels, "--top", "2"])
        #expect(named.status == 0)
        let best = topIndices(Array(refValues[0..<k]), 1)[0]
        #expect(named.stdout.contains("1. action \(best) "), "\(named.stdout)")
        try (0..<(k - 1)).map { "action \($0)" }.joined(separator: "\n").write(toFile: labels, atomically: true, encoding: .utf8)
        let wrong = CLI.run(["run", pkg, clipPath, "--labels", labels])
        #expect(wrong.status == 2 && wrong.stderr.contains("\(k - 1) lines") && wrong.stderr.contains("\(k) classes"))
        #expect(wrong.stdout.isEmpty)
    }

    /// A hand-written .npy clip ([N, T*C, H, W] float32, format 1.0 header) gives the same logits.
    @Test func npyInput() throws {
        let pkg = try CLIFixtures.miniPackage("f32")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clip = try SafetensorsFile.load(path: CLIFixtures.miniClips[2])
        let input = try #require(clip.tensor("input"))
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(input.shape.map(String.init).joined(separator: ", "))), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for v in input.floats() { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        let path = dir + "/clip.npy"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let out = dir + "/o.safetensors"
        let r = CLI.run(["run", pkg, path, "--output", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json?["input_shape"] as? [Int] == input.shape)
        let logits = try #require(try SafetensorsFile.load(path: out).tensor("logits")).doubles()
        #expect(maxRelative(logits, try #require(clip.tensor("logits_f64")).doubles()) <= 1e-5)
        // --output naming the input (spelled differently) is refused; the input stays.
        let before = try sha256(path)
        let same = CLI.run(["run", pkg, path, "--output", dir + "//clip.npy"])
        #expect(same.status == 2 && same.stderr.contains("would be overwritten"))
        #expect(try sha256(path) == before)
    }

    /// The frame folder through the reference preprocessing gives the reference logits (S = 224
    /// and S = 256), and the sampled frame numbers.
    @Test(.enabled(if: TestData.hasShared), arguments: [224, 256])
    func frameFolder(_ scale: Int) throws {
        let frames = TestData.shared("frames-mini/frames_png")
        let pre = TestData.shared("frames-mini/preprocessed.safetensors")
        let pkg = try CLIFixtures.miniPackage("f32")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/o.safetensors"
        let r = CLI.run(["run", pkg, frames, "--scale", String(scale), "--output", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let ref = try SafetensorsFile.load(path: pre)
        let want = try #require(ref.tensor("logits_f64_png_scale\(scale)")).doubles()
        let got = try #require(try SafetensorsFile.load(path: out).tensor("logits")).doubles()
        #expect(maxRelative(got, want) <= 1e-5, "scale \(scale): \(maxRelative(got, want))")
        let indices = try #require(ref.tensor("indices")).int64s().map(Int.init)
        #expect(r.json?["frames"] as? [Int] == indices)
    }
}

// MARK: - graph

@Suite struct CLIGraphTests {
    /// R50 f8x2: 23.851 G multiply-accumulates (convolutions, TAM depthwise 1x1 and the linear layer).
    @Test(.enabled(if: TestData.hasShared)) func r50TotalMACs() throws {
        let r50 = TestData.shared("r50-a2b4-f8x2-ssv2/model.pth.tar")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frames = try manifestConfig((r50 as NSString).deletingLastPathComponent + "/manifest.json").frames
        let pkg = dir + "/r50.blc"
        #expect(CLI.run(["import", r50, "-o", pkg, "--frames", String(frames)]).status == 0)
        let r = CLI.run(["graph", pkg, "--json"])
        #expect(r.status == 0)
        let totals = try #require(r.json?["totals"] as? [String: Any])
        let macs = Double(try #require(totals["total_macs"] as? Int))
        #expect(abs(macs / 1e9 - 23.851) <= 0.001, "\(macs)")
        #expect(totals["total_macs"] as? Int == (totals["conv_macs"] as? Int ?? 0) + (totals["tam_macs"] as? Int ?? 0) + (totals["linear_macs"] as? Int ?? 0))
        #expect((totals["tam_macs"] as? Int ?? 0) > 0)
    }

    @Test func dotAndText() throws {
        let pkg = try CLIFixtures.miniPackage("f32")
        let dot = CLI.run(["graph", pkg, "--dot"])
        #expect(dot.status == 0 && dot.stdout.hasPrefix("digraph") && dot.stdout.hasSuffix("}\n"))
        let j = CLI.run(["graph", pkg, "--json", "--input", "33x47"])
        let nodes = try #require(j.json?["nodes"] as? [[String: Any]])
        #expect(nodes.count == (try ModelPackage.read(pkg)).graph.nodes.count)
        #expect((j.json?["input"] as? [String: Any])?["height"] as? Int == 33)
        #expect(CLI.run(["graph", pkg, "--dot", "--json"]).status == 2)
        #expect(CLI.run(["graph", pkg, "--input", "0x5"]).status == 2)
    }
}

// MARK: - help, exit status and output streams of the executable

@Suite struct CLIHelpAndProcessTests {
    /// Every subcommand's help shows at least one example invocation.
    @Test func everyHelpHasAnExample() throws {
        let commands: [(String, ParsableCommand.Type)] = [
            ("inspect", Inspect.self), ("extract", Extract.self), ("import", Import.self), ("graph", GraphCommand.self),
            ("verify", Verify.self), ("run", Run.self), ("bench", Bench.self),
        ]
        for (name, type) in commands {
            let help = BLConvertCommand.helpMessage(for: type)
            #expect(help.contains("Example"), "\(name)")
            #expect(help.contains("  blconvert \(name) "), "\(name): no example invocation")
            // Discussion text fits 80 columns (ArgumentParser would break longer lines mid-sentence).
            let discussion = help.components(separatedBy: "USAGE:")[0]
            #expect(discussion.split(separator: "\n").allSatisfy { $0.count <= 80 }, "\(name)")
        }
        let r = CLI.run(["--help"])
        #expect(r.status == 0)
    }

    /// What only the process shows: usage errors exit 2 (as documented), errors go to stderr,
    /// `--json` prints exactly one JSON document on stdout and no progress when stderr is not a terminal.
    @Test func executableStatusAndStreams() throws {
        let help = try CLI.spawn(["import", "--help"])
        #expect(help.status == 0 && help.stdout.contains("Examples:"))
        let usage = try CLI.spawn(["import", CLIFixtures.miniCheckpoint, "-o", CLIFixtures.workDir + "/u.blc", "--frames", "7"])
        #expect(usage.status == 2)
        #expect(usage.stdout.isEmpty && usage.stderr.contains("--frames must be an even number"))
        #expect(try CLI.spawn(["frobnicate"]).status == 2)
        let evil = try CLI.spawn(["inspect", CLIFixtures.parsers + "/evil_os_system_zip.pth", "--json"])
        #expect(evil.status == 2 && evil.stdout.isEmpty && evil.stderr.contains("posix.system"))
        let inspect = try CLI.spawn(["inspect", CLIFixtures.parsers + "/tensors_zip.pth", "--json"])
        #expect(inspect.status == 0 && inspect.stderr.isEmpty)
        #expect(inspect.json?["format"] as? String == "pytorch-zip")
        let pkg = try CLIFixtures.miniPackage("f32")
        let verify = try CLI.spawn(["verify", pkg, CLIFixtures.miniClips[1], "--json"])
        #expect(verify.status == 0 && verify.stderr.isEmpty && verify.json?["passed"] as? Bool == true)
        let bench = try CLI.spawn(["bench", pkg, "--input", "32x32", "--runs", "1", "--warmup", "0", "--json", "--threads", "1"])
        #expect(bench.status == 0 && bench.stderr.isEmpty, "\(bench.stderr)")
        #expect((bench.json?["gflop_per_clip"] as? Double ?? 0) > 0)
        // The command stops OpenBLAS's idle (spinning) worker threads before it loads anything.
        #if os(Linux)
        #expect(["stopped", "none"].contains(bench.json?["openblas_server"] as? String ?? "?"), "\(bench.stdout)")
        #endif
        // FFmpeg's libraries are loaded on the first video, not linked: without them a video is a
        // clear error naming them and BLCONVERT_FFMPEG_DIR, and everything else still runs.
        let video = TestData.repoRoot.appendingPathComponent("Fixtures/video/odd.webm").path
        let noFFmpeg = ["BLCONVERT_FFMPEG_DIR": "/nonexistent-ffmpeg"]
        let refused = try CLI.spawn(["run", pkg, video], environment: noFFmpeg)
        #expect(refused.status == 2 && refused.stdout.isEmpty, "\(refused.stdout)")
        #expect(refused.stderr.contains("libavformat") && refused.stderr.contains("BLCONVERT_FFMPEG_DIR")
                && refused.stderr.contains("odd.webm"), "\(refused.stderr)")
        let clip = try CLI.spawn(["run", pkg, CLIFixtures.miniClips[1], "--json"], environment: noFFmpeg)
        #expect(clip.status == 0 && clip.json?["samples"] != nil, "\(clip.stderr)")
        let decoded = try CLI.spawn(["run", pkg, video, "--json"])
        #expect(decoded.status == 0 && decoded.json?["samples"] != nil, "\(decoded.stderr)")
        #if os(Linux)
        if let exe = CLI.binary, FileManager.default.isExecutableFile(atPath: "/usr/bin/ldd") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
            p.arguments = [exe]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let needed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(needed.contains("libc.so") && !needed.contains("libavformat") && !needed.contains("libavcodec"),
                    "blconvert links FFmpeg: \(needed)")
        }
        #endif
        // With Winograd off, the little branch's first 3x3 (64 -> 32 at 32x32) runs on the direct
        // kernel, and BLCONVERT_DIRECT=off packs it instead; `--profile --json` names each layer's kernel.
        if Gemm.avx512 {
            for (extra, direct) in [([String: String](), true), (["BLCONVERT_DIRECT": "off"], false)] {
                let env = extra.merging(["BLCONVERT_WINOGRAD": "off"]) { $1 }
                let r = try CLI.spawn(["bench", pkg, "--input", "64x64", "--runs", "1", "--warmup", "0", "--json",
                                       "--threads", "1", "--profile"], environment: env)
                let paths = (r.json?["profile_steps"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
                #expect(r.status == 0 && paths.contains("GEMM"), "\(r.stderr)")
                #expect(paths.contains("GEMM direct") == direct, "\(env): \(Set(paths))")
            }
        }
    }
}

/// Counts XML elements by name (and fails the parse on malformed XML).
final class XMLCounter: NSObject, XMLParserDelegate {
    var count: [String: Int] = [:]
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        count[name, default: 0] += 1
    }
}

// MARK: - verification metrics and reports

@Suite struct CLIVerifyMetricsTests {
    @Test func agreementFollowsTheParityCriterion() {
        let out: [Float] = [1, 2, 3, -1]
        let ref: [Double] = [1, 2, 4, -1]
        let a = Agreement.measure(out, ref)
        let dot = 1.0 + 4 + 12 + 1, na = (1.0 + 4 + 9 + 1).squareRoot(), nb = (1.0 + 4 + 16 + 1).squareRoot()
        #expect(a.maxAbsError == 1 && a.maxRelError == 0.25 && a.count == 4 && a.nonFinite == 0)
        #expect(abs(a.cosine - dot / (na * nb)) < 1e-15)
        #expect(a.passes(rtol: 0.25, atol: 0, refScale: 4) && !a.passes(rtol: 0.24, atol: 0, refScale: 4))
        #expect(a.passes(rtol: 0, atol: 1, refScale: 4))
        let bad = Agreement.measure([1, .nan, 3], [1, 2, 3])
        #expect(bad.nonFinite == 1 && bad.maxRelError == .infinity && !bad.passes(rtol: 1, atol: 1, refScale: 3))
    }

    @Test func rankingAndSoftmax() {
        let v: [Float] = [0.5, 2, 2, -1, 3]
        #expect(Ranking.topK(v[...], 3) == [4, 1, 2])
        #expect(Ranking.topK(v[1...], 2) == [3, 0])
        let p = Ranking.softmax(v[...])
        #expect(abs(p.reduce(0, +) - 1) < 1e-12 && p[4] > p[1] && p[1] == p[2])
    }

    @Test func junitEscapesNames() throws {
        let ag = Agreement.measure([1], [2])
        let r = ClipResult(file: "a&b<c>\"d\".safetensors", inputShape: [1], referenceName: "logits", overall: ag, samples: [],
                           activations: [], firstDivergence: nil, passed: false, seconds: 0.5)
        let xml = VerifyReport.junit([r], model: "m<1>", options: VerifyOptions())
        let counter = XMLCounter()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = counter
        #expect(parser.parse())
        #expect(counter.count["testcase"] == 1 && counter.count["failure"] == 1)
        #expect(xml.contains("a&amp;b&lt;c&gt;&quot;d&quot;.safetensors"))
    }
}

// MARK: - Helpers

/// What one `blconvert` invocation produced.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String

    /// stdout parsed as JSON by Foundation (an independent parser), or nil when it is not JSON.
    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
    }
}

/// Runs the command-line tool: in-process through `BLConvertCommand.parseAsRoot` (output captured,
/// exit status as `blconvert` would exit with it), or as the built executable.
enum CLI {
    static func run(_ args: [String]) -> CLIResult {
        let capture = OutputCapture()
        var status: Int32 = 0
        Console.$capture.withValue(capture) {
            do {
                var command = try BLConvertCommand.parseAsRoot(args)
                try command.run()
            } catch {
                status = BLConvertCommand.exitStatus(for: error)
                if !(error is ExitCode) {
                    capture.append(BLConvertCommand.fullMessage(for: error) + "\n", toError: status != 0)
                }
            }
        }
        return CLIResult(status: status, stdout: capture.stdout, stderr: capture.stderr)
    }

    /// The built `blconvert` beside the test bundle (same configuration), else under `.build`.
    static let binary: String? = {
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL {
            var dir = exe.deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("blconvert").path)
                dir.deleteLastPathComponent()
            }
        }
        for config in ["release", "debug"] {
            candidates.append(TestData.repoRoot.appendingPathComponent(".build/\(config)/blconvert").path)
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Runs the executable with stdout and stderr captured in files (stdin empty), with
    /// `environment` added to this process's.
    static func spawn(_ args: [String], environment: [String: String] = [:]) throws -> CLIResult {
        let path = try #require(binary, "the blconvert executable was not built (swift build --product blconvert)")
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outPath = dir + "/stdout", errPath = dir + "/stderr"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try #require(FileHandle(forWritingAtPath: outPath))
        let err = try #require(FileHandle(forWritingAtPath: errPath))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        return CLIResult(status: p.terminationStatus,
                         stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self))
    }
}

/// Shared inputs of the CLI tests.
enum CLIFixtures {
    static let mini = TestData.fixture("mini-a2b4-f4x2")
    static let miniCheckpoint = TestData.fixture("mini-a2b4-f4x2/model.pth.tar")
    static let miniClips = (0..<3).map { TestData.fixture("mini-a2b4-f4x2/clip\($0).safetensors") }
    static let parsers = TestData.fixture("parsers")

    /// One directory for packages several tests read (never modified after creation): under
    /// `.build`, emptied at the start of each test run, so runs do not pile up copies in /tmp.
    static let workDir: String = {
        let dir = TestData.repoRoot.appendingPathComponent(".build/cli-test-packages").path
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// `blconvert import model.pth.tar -o <dir>/mini-<tag>.blc --frames 8 <extra>`, once per tag.
    static func miniPackage(_ tag: String, _ extra: [String] = []) throws -> String {
        try packages.get(tag) {
            let out = workDir + "/mini-\(tag).blc"
            let r = CLI.run(["import", miniCheckpoint, "-o", out, "--frames", "8"] + extra)
            try #require(r.status == 0, "import failed: \(r.stderr)")
            return out
        }
    }

    private static let packages = OnceCache()

    static func expected() throws -> JSON {
        try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: parsers + "/expected.json"))))
    }

    /// A parsed JSON file written by blconvert (package metadata, ...).
    static func readJSON(_ path: String) throws -> JSON {
        try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }
}

/// Values computed once and shared by concurrently running tests.
final class OnceCache: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: String] = [:]

    func get(_ key: String, _ make: () throws -> String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let v = values[key] { return v }
        let v = try make()
        values[key] = v
        return v
    }
}

/// Writes a safetensors file holding `tensors` (name order kept in the header by the writer's rules).
func writeSafetensors(_ tensors: [(name: String, tensor: Tensor)], to path: String) throws {
    try SafetensorsWriter.write(tensors, to: path)
}

/// A float32 tensor from values.
func floatTensor(_ values: [Float], _ shape: [Int]) throws -> Tensor {
    try Tensor.fromFloats(values, shape: shape)
}

/// A float64 tensor from values.
func doubleTensor(_ values: [Double], _ shape: [Int]) throws -> Tensor {
    try Tensor.make(dtype: .float64, shape: shape) { raw in
        for (i, v) in values.enumerated() { raw.storeBytes(of: v, toByteOffset: i * 8, as: Double.self) }
    }
}

/// The indices of the `k` largest values, largest first (ties: lower index first).
func topIndices(_ values: [Double], _ k: Int) -> [Int] {
    Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k))
}

/// max|a - b| / max|b|.
func maxRelative(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count, !b.isEmpty else { return .infinity }
    var d = 0.0, m = 0.0
    for i in a.indices { d = max(d, abs(a[i] - b[i])); m = max(m, abs(b[i])) }
    return m > 0 ? d / m : d
}

func sha256(_ path: String) throws -> String { try SHA256.hex(file: path) }

func listing(_ dir: String) -> Set<String> {
    Set((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
}
