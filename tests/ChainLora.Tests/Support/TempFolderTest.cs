namespace ChainLora.Tests;

/// <summary>A temp folder deleted with the test class instance.</summary>
public abstract class TempFolderTest : IDisposable
{
    protected readonly DirectoryInfo Temp = Directory.CreateTempSubdirectory("chainlora-test-");

    protected string PathIn(string name) => Path.Combine(Temp.FullName, name);

    /// <summary>Writes <paramref name="text"/> to <paramref name="relative"/> under the temp folder (folders created); returns its path.</summary>
    protected string Write(string relative, string text)
    {
        var path = PathIn(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    public void Dispose()
    {
        Temp.Delete(recursive: true);
        GC.SuppressFinalize(this);
    }
}
