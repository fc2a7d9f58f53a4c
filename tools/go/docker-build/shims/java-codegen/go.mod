// Local stand-in for the Java SDK-generation metadata type (see ../../go.mod for why).
module github.com/pulumi/pulumi-java

go 1.24
