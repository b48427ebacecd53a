import BLCore

/// Machine-readable forms of verification results: JSON and JUnit XML.
package enum VerifyReport {
    /// `errors` are the clips that could not be checked; `passed` is false when there are any.
    package static func json(_ results: [ClipResult], errors: [ClipError] = [], model: String, options: VerifyOptions) -> JSON {
        func ag(_ a: Agreement) -> [(String, JSON)] {
            [("max_abs_error", .double(a.maxAbsError)), ("max_rel_error", .double(a.maxRelError)),
             ("cosine", .double(a.cosine)), ("non_finite", .int(Int64(a.nonFinite)))]
        }
        let clips: [JSON] = results.map { r in
            var items: [(String, JSON)] = [
                ("file", .string(r.file)),
                ("input_shape", .array(r.inputShape.map { .int(Int64($0)) })),
                ("reference", .string(r.referenceName)),
                ("passed", .bool(r.passed)),
                ("seconds", .double(r.seconds)),
            ]
            items += ag(r.overall)
            items.append(("samples", .array(r.samples.map { s in
                .object([("index", .int(Int64(s.index)))] + ag(s.agreement) + [
                    ("top1_agree", .bool(s.top1)), ("top5_agree", .bool(s.top5)),
                    ("reference_top5", .array(s.referenceTop5.map { .int(Int64($0)) })),
                    ("output_top5", .array(s.outputTop5.map { .int(Int64($0)) })),
                ])
            })))
            items.append(("activations", .array(r.activations.map { a in
                var o: [(String, JSON)] = [("module", .string(a.module)), ("compared", .bool(a.agreement != nil)),
                                           ("passed", .bool(a.passed))]
                if let n = a.node { o.append(("node", .int(Int64(n)))) }
                if let g = a.agreement { o += ag(g) }
                if let note = a.note { o.append(("note", .string(note))) }
                return .object(o)
            })))
            items.append(("first_divergence", r.firstDivergence.map { .string($0.module) } ?? .null))
            return .object(items)
        }
        return .object([
            ("model", .string(model)),
            ("rtol", .double(options.rtol)), ("atol", .double(options.atol)),
            ("passed", .bool(errors.isEmpty && results.allSatisfy { $0.passed })),
            ("clips_passed", .int(Int64(results.filter { $0.passed }.count))),
            ("clips_total", .int(Int64(results.count + errors.count))),
            ("clips_unreadable", .int(Int64(errors.count))),
            ("clips", .array(clips)),
            ("errors", .array(errors.map { e in
                .object([("file", .string(e.file)), ("kind", .string(e.error.kind.rawValue)),
                         ("message", .string(e.error.description))])
            })),
        ])
    }

    /// Clips in `errors` appear as test cases with an `<error>` element.
    package static func junit(_ results: [ClipResult], errors: [ClipError] = [], model: String, options: VerifyOptions) -> String {
        func esc(_ s: String) -> String {
            var o = ""
            for c in s {
                switch c {
                case "&": o += "&amp;"
                case "<": o += "&lt;"
                case ">": o += "&gt;"
                case "\"": o += "&quot;"
                default: o.append(c)
                }
            }
            return o
        }
        let failures = results.filter { !$0.passed }.count
        let total = results.reduce(0) { $0 + $1.seconds }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        let tests = results.count + errors.count
        x += "<testsuites tests=\"\(tests)\" failures=\"\(failures)\" errors=\"\(errors.count)\" time=\"\(total)\">\n"
        x += "  <testsuite name=\"blconvert verify \(esc(model))\" tests=\"\(tests)\" failures=\"\(failures)\" errors=\"\(errors.count)\" time=\"\(total)\">\n"
        for r in results {
            x += "    <testcase classname=\"parity\" name=\"\(esc(r.file))\" time=\"\(r.seconds)\">\n"
            if !r.passed {
                var msg = "max rel error \(r.overall.maxRelError) (rtol \(options.rtol), atol \(options.atol))"
                if let d = r.firstDivergence {
                    msg += "; first divergence: \(d.module)" + (d.agreement.map { " (rel \($0.maxRelError))" } ?? "")
                }
                x += "      <failure message=\"\(esc(msg))\"/>\n"
            }
            x += "    </testcase>\n"
        }
        for e in errors {
            x += "    <testcase classname=\"parity\" name=\"\(esc(e.file))\" time=\"0\">\n"
            x += "      <error type=\"\(e.error.kind.rawValue)\" message=\"\(esc(e.error.description))\"/>\n"
            x += "    </testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }
}
