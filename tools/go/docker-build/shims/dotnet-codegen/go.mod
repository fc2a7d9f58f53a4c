// Local stand-in for the C# SDK-generation metadata type (see ../../go.mod for why).
module github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3

go 1.24
