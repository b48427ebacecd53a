import ArgumentParser
import BLConvert
import BLCore
import BLGraph

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Show the graph IR: per node the op, output shape, parameters, multiply-accumulates and activation bytes.",
        discussion: """
        Counts come from the IR for one clip (or --batch clips) of the given input
        size. total_macs counts every convolution (the TAM's depthwise 1x1
        convolutions included) and the linear layer: the paper's "GFLOPs". Also:
        parameters, and activation memory (sum over nodes and the peak live at once).

        Examples:
          blconvert graph r50.blc --input 224x224
          blconvert graph r50.blc --json | jq .totals.total_macs
          blconvert graph r50.blc --dot > r50.dot && dot -Tsvg r50.dot > r50.svg
        """
    )

    @OptionGroup var model: ModelOptions

    @OptionGroup var inputSize: InputSizeOptions
    var input: InputSize { inputSize.input }

    @Option(name: .long, help: "Clips per batch for the counts.")
    var batch: Int = 1

    @Flag(name: .long, help: "Print Graphviz dot instead of text.")
    var dot = false

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be >= 1") }
        if dot && json.json { throw ValidationError("choose one of --dot and --json") }
    }

    func run() throws {
        inputSize.warn()
        let (loaded, cost, shapes) = try reportingErrors { () -> (BLVNetModel, GraphCost, [NodeShape]) in
            let m = try model.load()
            let cost = try m.graph.cost(batch: batch, height: input.height, width: input.width)
            let shapes = try m.graph.inferShapes(height: input.height, width: input.width)
            return (m, cost, shapes)
        }
        let g = loaded.graph
        if dot {
            Console.out(Self.dot(g, shapes: shapes))
            return
        }
        if json.json {
            let nodes: [JSON] = g.nodes.map { n in
                let c = cost.nodes.first { $0.node == n.id }
                var o: [(String, JSON)] = [
                    ("id", .int(Int64(n.id))), ("op", .string(n.op.name)),
                    ("inputs", .array(n.inputs.map { .int(Int64($0)) })),
                    ("output_shape", .array(shapes[n.id].dims(batch: batch).map { .int(Int64($0)) })),
                    ("parameters", .int(Int64(n.op.weightNames.reduce(0) { $0 + (g.weightShape($1)?.reduce(1, *) ?? 0) }))),
                    ("macs", .int(Int64(c?.macs ?? 0))),
                    ("activation_bytes", .int(Int64(c?.outputBytes ?? 0))),
                ]
                if let origin = n.origin { o.append(("origin", .string(origin))) }
                return .object(o)
            }
            Console.out(JSON.object([
                ("model", .string(model.model)),
                ("config", loaded.configuration.internalConfig.json),
                ("input", .object([("batch", .int(Int64(batch))), ("height", .int(Int64(input.height))), ("width", .int(Int64(input.width)))])),
                ("nodes", .array(nodes)),
                ("totals", .object([
                    ("total_macs", .int(Int64(cost.totalMACs))),
                    ("conv_macs", .int(Int64(cost.convMACs))),
                    ("linear_macs", .int(Int64(cost.linearMACs))),
                    ("tam_macs", .int(Int64(cost.tamMACs))),
                    ("total_flops", .int(Int64(2 * cost.totalMACs))),
                    ("parameters", .int(Int64(cost.parameters))),
                    ("activation_bytes_total", .int(Int64(cost.totalActivationBytes))),
                    ("activation_bytes_peak", .int(Int64(cost.peakActivationBytes))),
                    ("node_count", .int(Int64(g.nodes.count))),
                ])),
            ]).strictJSONText)
            return
        }
        var s = g.textDump(height: input.height, width: input.width)
        if !s.hasSuffix("\n") { s += "\n" }
        let gmacs = Double(cost.totalMACs) / 1e9
        s += "\ninput \(batch)x\(loaded.configuration.frames * loaded.configuration.inputChannels)x\(input.height)x\(input.width) (T = \(loaded.configuration.frames))\n"
        s += "multiply-accumulates: \(Format.fixed(gmacs, 3)) G (\(Format.fixed(2 * gmacs, 3)) GFLOP): convolutions "
        s += "\(Format.fixed(Double(cost.convMACs) / 1e9, 3)) G, TAM depthwise 1x1 \(Format.fixed(Double(cost.tamMACs) / 1e9, 3)) G, "
        s += "linear \(Format.fixed(Double(cost.linearMACs) / 1e9, 3)) G\n"
        s += "parameters: \(Format.grouped(cost.parameters))\n"
        s += "activations: \(Format.bytes(cost.totalActivationBytes)) in all, \(Format.bytes(cost.peakActivationBytes)) live at the peak (one value per IR node; the engine's fusions and in-place steps plan less: see `bench`)\n"
        Console.out(s)
    }

    static func dot(_ g: Graph, shapes: [NodeShape]) -> String {
        var s = "digraph blconvert {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n"
        for n in g.nodes {
            var label = "\(n.id) \(n.op.name)\\n\(shapes[n.id])"
            if let o = n.origin { label += "\\n\(String(o.filter { $0 != "\"" }))" }
            s += "  n\(n.id) [label=\"\(label)\"];\n"
            for i in n.inputs { s += "  n\(i) -> n\(n.id);\n" }
        }
        return s + "}"
    }
}
