import ArgumentParser
import BLCore
import BLEval

struct EvalMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-merge",
        abstract: "Join the shards of a sharded `blconvert eval` into the outputs of one whole run.",
        discussion: """
        Each PART is a shard's --json output or its --results/--resume JSON-lines
        file (a shard may give both). The parts must be of one evaluation (same
        model weights, list and settings) and together hold every video of the
        list; the outputs are then what one unsharded run writes, in list order,
        byte for byte: the summary line, --json, --details, --predictions.

        Exit status: 0 merged, 2 bad input (unreadable parts, parts of different
        evaluations, missing videos, or videos recorded as errors).

        Examples:
          blconvert eval-merge part0.json part1.json part2.json part3.json --json
          blconvert eval-merge results-*.jsonl --details val_details.npy
          blconvert eval-merge shards/*.json --predictions test_predictions.csv
        """
    )

    @Argument(help: "The shards' --json outputs or results files.")
    var parts: [String] = []

    @Option(name: .long, help: "Write the softmax outputs [videos, classes] float64 here (.npy).")
    var details: String?

    @Option(name: .long, help: "Write the predictions file here: video_id;p1;p2;p3;p4;p5 per video.")
    var predictions: String?

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if parts.isEmpty { throw ValidationError("give the shards' outputs to merge") }
    }

    func run() throws {
        let failed = try reportingErrors { () -> Int in
            for (option, path) in [("--details", details), ("--predictions", predictions)] {
                if let path { try checkNotAnInput(path, option: option, inputs: parts) }
            }
            let read = try parts.map { p -> (path: String, header: EvalHeader, results: [VideoResult]) in
                let r = try EvalParts.read(p)
                return (p, r.header, r.results)
            }
            let report = try EvalParts.merge(read)
            let classes = report.results.compactMap { $0.logits?.count }.first ?? 0
            try Eval.writeOutputs(report, classes: classes, details: details, predictions: predictions, json: json.json)
            return report.failed
        }
        if failed > 0 { throw Exit.badInput }
    }
}
