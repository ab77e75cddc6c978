namespace ChainLora.Tests;

/// <summary>A temp folder deleted with the test class instance.</summary>
public abstract class TempFolderTest : IDisposable
{
    protected readonly DirectoryInfo Temp = Directory.CreateTempSubdirectory("chainlora-test-");

    protected string PathIn(string name) => Path.Combine(Temp.FullName, name);

    public void Dispose()
    {
        Temp.Delete(recursive: true);
        GC.SuppressFinalize(this);
    }
}
