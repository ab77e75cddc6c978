using System.Text;
using ChainLora.Tasks;

namespace ChainLora.Tests.Tasks;

/// <summary>
/// Every task's template applied to hand-written records, compared with the approved rendering in
/// Approvals/prompts-&lt;task&gt;.txt (strings shown JSON-escaped, so "\n" and spaces are visible).
/// These files are the spec of the prompts: review any change to them against MeZO's templates.
/// </summary>
public class PromptApprovalTests
{
    // sft has no fixed prompt: the model's chat template renders it (SftEncoderTests, DataCommandTests).
    public static TheoryData<string> Tasks => new(TaskRegistry.Names.Where(n => n != "sft"));

    [Theory, MemberData(nameof(Tasks))]
    public void Rendered_prompts_match_the_approval_file(string task) =>
        Approvals.Verify($"prompts-{task}.txt", task == "lm" ? RenderLmSplit() : Render(task, Examples(task)));

    [Fact]
    public void In_context_prompts_match_the_approval_file()
    {
        var sst2 = Examples("sst2");
        var squad = Examples("squad");
        var text = new StringBuilder();
        text.AppendLine("# in-context learning: demonstrations with their gold answers, \"\\n\\n\" between, then the test prompt");
        text.AppendLine("## sst2, 2 demonstrations");
        text.AppendLine($"prompt: {Quote(PromptEncoder.WithDemonstrations(sst2[2].Prompt, sst2.Take(2)))}");
        text.AppendLine("## squad, 1 demonstration");
        text.AppendLine($"prompt: {Quote(PromptEncoder.WithDemonstrations(squad[1].Prompt, squad.Take(1)))}");
        Approvals.Verify("prompts-icl.txt", text.ToString());
    }

    internal static IReadOnlyList<TaskExample> Examples(string task) => task switch
    {
        "sst2" => Render(Templates.Sst2,
            new Sst2Record("it 's a charming and often affecting journey . ", 1),
            new Sst2Record("unflinchingly bleak and desperate ", 0),
            new Sst2Record("a gripping , funny film", 1)),
        "rte" => Render(Templates.Rte,
            new RteRecord("No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons of Mass Destruction Found in Iraq.", 1),
            new RteRecord("Pope Benedict XVI is the new leader.", "There is a new pope.", 0)),
        "cb" => Render(Templates.Cb,
            new CbRecord("It was a complex language. Not written down but handed down.", "the language was peeled down", 0),
            new CbRecord("He had never seen her before.", "he knew her", 1),
            new CbRecord("She might come tomorrow.", "she will come", 2)),
        "boolq" => Render(Templates.BoolQ,
            new BoolQRecord("Ethanol fuel -- All biomass goes through these steps.", "does ethanol take more energy make that produces", false),
            new BoolQRecord("The sky is blue on clear days.", "Is the sky blue?", true)),
        "wsc" => Render(Templates.Wsc,
            new WscRecord("Mark told Pete many lies about himself, which Pete included in his book. He should have been more skeptical.",
                "Mark", "He", false),
            new WscRecord("The trophy doesn't fit into the suitcase because it is too large.", "The trophy", "it", true)),
        "wic" => Render(Templates.Wic,
            new WicRecord("place", "Do you want to come over to my place later?", "A political system with no place for the less prominent groups.", false),
            new WicRecord("hold", "The general ordered the colonel to hold his position at all costs.", "Hold the taxi.", true)),
        "multirc" => Render(Templates.MultiRc,
            new MultiRcRecord("Forces cause changes in motion. A push starts a ball rolling.", "What causes a change in motion?", "A force", true),
            new MultiRcRecord("Forces cause changes in motion. A push starts a ball rolling.", "What causes a change in motion?", "Paper checks", false)),
        "copa" => Render(Templates.Copa,
            new CopaRecord("My body cast a shadow over the grass.", "The sun was rising.", "The grass was cut.", "cause", 0),
            new CopaRecord("The stain came out of the shirt", "I patched the shirt.", "I bleached the shirt.", "effect", 1),
            new CopaRecord("The man turned on the faucet.", "NASA launched a rocket.", "Water flowed from the spout.", "effect", 1)),
        "record" => Render(Templates.ReCoRD,
            new ReCoRDRecord(
                "Islamabad (CNN) -- Bilawal Bhutto-Zardari spoke at a rally.\n@highlight\nNEW: Kill a Bhutto and another will emerge\n@highlight\nBenazir Bhutto was killed five years ago",
                "@placeholder's son said his training has begun.",
                ["Islamabad", "CNN", "Bilawal Bhutto-Zardari", "Bhutto", "Benazir Bhutto", "Bhutto"],
                ["Benazir Bhutto", "Bhutto"])),
        "squad" => Render(Templates.Squad,
            new SquadRecord("Super_Bowl_50", "Super Bowl 50 was an American football game. The Denver Broncos won.",
                "Which NFL team won Super Bowl 50? ", ["Denver Broncos", "The Denver Broncos"]),
            new SquadRecord("Normans", "The Normans gave their name to Normandy.", "What region is named after the Normans?", ["Normandy"])),
        "drop" => Render(Templates.Drop,
            new DropRecord("The Bears scored 3 touchdowns and 2 field goals.", "How many touchdowns did the Bears score?", ["3", "three"]),
            new DropRecord("Smith and Jones scored for the Bears.", "Who scored for the Bears?", ["Smith, Jones"])),
        _ => throw new ArgumentException(task),
    };

    static IReadOnlyList<TaskExample> Render<T>(Func<T, TaskExample> template, params T[] records) => records.Select(template).ToList();

    static string Render(string task, IReadOnlyList<TaskExample> examples)
    {
        var text = new StringBuilder();
        text.AppendLine($"# {task}: templates applied to hand-written records (PromptApprovalTests); strings JSON-escaped");
        for (var i = 0; i < examples.Count; i++)
        {
            text.AppendLine($"## example {i + 1}");
            text.AppendLine($"prompt: {Quote(examples[i].Prompt)}");
            switch (examples[i])
            {
                case ChoiceExample c:
                    for (var k = 0; k < c.Options.Count; k++)
                        text.AppendLine($"option {k}: {Quote(c.Options[k])}{(c.Correct.Contains(k) ? "  (correct)" : "")}");
                    break;
                case AnswerExample a:
                    text.AppendLine($"target: {Quote(a.Target)}");
                    text.AppendLine($"answers: {string.Join(" | ", a.Answers.Select(Quote))}");
                    break;
            }
            text.AppendLine($"gold text: {Quote(examples[i].Demonstration)}");
        }
        return text.ToString();
    }

    static string RenderLmSplit()
    {
        const string text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n";
        var (train, validation) = TextCorpus.SplitText(text);
        return "# lm: no template; a single text file is split 90/10 at the last line break before the 90% point\n" +
               $"text: {Quote(text)}\ntrain: {Quote(train)}\nvalidation: {Quote(validation)}\n";
    }

    static string Quote(string s) =>
        "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\t", "\\t") + "\"";
}
