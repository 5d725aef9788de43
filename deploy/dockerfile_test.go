package deploy_test

import (
	"debug/elf"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// stage is one FROM of a Dockerfile and the instructions under it.
type stage struct {
	image, name  string
	instructions []instruction
}

type instruction struct{ keyword, args string }

// TestDockerfile runs the build stage's go build exactly as the Dockerfile
// writes it, with its environment, and checks what the image needs of the
// result: a static binary (the final image has no C library) that runs.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	build, env, argv := goBuild(t, stages)

	want := goVersion(t)
	tag, _ := strings.CutPrefix(build.image, "golang:")
	if rest, ok := strings.CutPrefix(tag, want); !ok || rest != "" && rest[0] != '.' && rest[0] != '-' {
		t.Errorf("build stage FROM %s: want golang:%s, the Go release go.mod names", build.image, want)
	}

	// Where the Dockerfile writes the binary, the final stage must copy it from.
	out := slices.Index(argv, "-o")
	if out < 0 || out+1 == len(argv) {
		t.Fatalf("go build %v: no -o", argv)
	}
	final := stages[len(stages)-1]
	if !slices.ContainsFunc(final.instructions, func(in instruction) bool {
		return in.keyword == "COPY" && strings.HasPrefix(in.args, "--from="+build.name+" "+argv[out+1]+" ")
	}) {
		t.Errorf("the final stage does not COPY --from=%s %s", build.name, argv[out+1])
	}
	if !strings.HasSuffix(final.image, ":nonroot") {
		t.Errorf("final stage FROM %s: want a :nonroot image", final.image)
	}
	checkExposed(t, final)

	bin := filepath.Join(t.TempDir(), "app")
	argv[out+1] = bin
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = root
	// The image is built for Linux; the Dockerfile's own settings come last and win.
	cmd.Env = append(append(os.Environ(), "GOOS=linux"), env...)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(env, " "), strings.Join(argv, " "), err, output)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked: it has a %s program header", p.Type)
		}
	}
	if f.Section(".dynamic") != nil {
		t.Error("the binary is dynamically linked: it has a .dynamic section")
	}

	if runtime.GOOS == "linux" {
		// On SQLite, which is pure Go: migrate needs no service.
		run := exec.Command(bin, "--config", filepath.Join(root, "configs/app.yaml"), "migrate")
		run.Env = append(os.Environ(), "APP_DATABASE_DSN="+filepath.Join(t.TempDir(), "app.db"))
		if output, err := run.CombinedOutput(); err != nil {
			t.Errorf("app migrate: %v\n%s", err, output)
		}
	}
}

// goBuild finds the one RUN that runs go build and returns its stage, the
// environment it sets (the stage's ENV before it and the command's
// NAME=value prefixes) and the command.
func goBuild(t *testing.T, stages []stage) (build stage, env, argv []string) {
	t.Helper()
	found := 0
	for _, s := range stages {
		var stageEnv []string
		for _, in := range s.instructions {
			switch {
			case in.keyword == "ENV":
				stageEnv = append(stageEnv, in.args)
			case in.keyword == "RUN" && strings.Contains(in.args, "go build"):
				found++
				build = s
				env, argv = parseEnv(t, stageEnv), parseRun(t, in.args)
				for len(argv) > 0 && strings.Contains(argv[0], "=") {
					env, argv = append(env, argv[0]), argv[1:]
				}
			}
		}
	}
	if found != 1 {
		t.Fatalf("the Dockerfile has %d RUN go build, want 1", found)
	}
	if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
		t.Fatalf("RUN %v: want [NAME=value...] go build ...", argv)
	}
	if build.name == "" {
		t.Fatal("the go build stage has no name (FROM ... AS build)")
	}
	return build, env, argv
}

// parseEnv returns the NAME=value pairs of ENV instructions.
func parseEnv(t *testing.T, envs []string) []string {
	t.Helper()
	var env []string
	for _, args := range envs {
		words, err := shellWords(args)
		if err != nil {
			t.Fatalf("ENV %s: %v", args, err)
		}
		for _, w := range words {
			if !strings.Contains(w, "=") {
				t.Fatalf("ENV %s: write ENV NAME=value", args)
			}
		}
		env = append(env, words...)
	}
	return env
}

// parseRun returns the command of a RUN, without its flags (--mount=...):
// one plain command, so that the test can run exactly it.
func parseRun(t *testing.T, args string) []string {
	t.Helper()
	words, err := shellWords(args)
	if err != nil {
		t.Fatalf("RUN %s: %v (the build must be one plain command)", args, err)
	}
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}
	return words
}

// checkExposed checks the final stage EXPOSEs the HTTP port of the
// configuration file its APP_CONFIG names.
func checkExposed(t *testing.T, final stage) {
	t.Helper()
	var config string
	var exposed []string
	for _, in := range final.instructions {
		words, _ := shellWords(in.args)
		switch in.keyword {
		case "ENV":
			for _, w := range words {
				if v, ok := strings.CutPrefix(w, "APP_CONFIG="); ok {
					config = v
				}
			}
		case "EXPOSE":
			exposed = append(exposed, words...)
		}
	}
	if config == "" {
		t.Error("the final stage sets no APP_CONFIG")
		return
	}
	_, port, err := net.SplitHostPort(loadConfig(t, config).HTTP.Addr)
	if err != nil {
		t.Fatalf("%s: http.addr: %v", config, err)
	}
	if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
		t.Errorf("the final stage EXPOSEs %v, %s listens on %s", exposed, config, port)
	}
}

// parseDockerfile reads ../Dockerfile into stages: continuation lines
// joined, comments dropped.
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var line string
	for raw := range strings.Lines(string(data)) {
		raw = strings.TrimSpace(raw)
		if strings.HasPrefix(raw, "#") || raw == "" && line == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(raw, `\`); ok {
			line += cont + " "
			continue
		}
		line += raw
		keyword, args, _ := strings.Cut(line, " ")
		keyword, args, line = strings.ToUpper(keyword), strings.TrimSpace(args), ""
		if keyword == "FROM" {
			fields := strings.Fields(args)
			if len(fields) == 0 {
				t.Fatal("Dockerfile: FROM without an image")
			}
			s := stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = strings.ToLower(fields[2]) // stage names are case-insensitive
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if keyword == "ARG" {
				continue // an ARG before the first FROM
			}
			t.Fatalf("Dockerfile: %s before FROM", keyword)
		}
		s := &stages[len(stages)-1]
		s.instructions = append(s.instructions, instruction{keyword, args})
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final one", len(stages))
	}
	return stages
}

// goVersion is the major.minor Go release go.mod names.
func goVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			parts := strings.SplitN(v, ".", 3)
			return strings.Join(parts[:min(2, len(parts))], ".")
		}
	}
	t.Fatal("go.mod has no go line")
	return ""
}
