package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/schemas/topics"
	"gopkg.in/yaml.v3"
)

type kustomization struct {
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
	Patches []struct {
		Path  string `yaml:"path"`
		Patch string `yaml:"patch"`
	} `yaml:"patches"`
	Replicas []struct {
		Name  string `yaml:"name"`
		Count int    `yaml:"count"`
	} `yaml:"replicas"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	Env            []envVar `yaml:"env"`
	ReadinessProbe *probe   `yaml:"readinessProbe"`
	LivenessProbe  *probe   `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service
		Type                  string `yaml:"type"`
		ExternalTrafficPolicy string `yaml:"externalTrafficPolicy"`
		SessionAffinity       string `yaml:"sessionAffinity"`
		Ports                 []struct {
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
		// HorizontalPodAutoscaler
		MaxReplicas    int `yaml:"maxReplicas"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
	} `yaml:"spec"`
	Data map[string]string `yaml:"data"`
}

func decodeObjects(r io.Reader) ([]k8sObject, error) {
	var out []k8sObject
	dec := yaml.NewDecoder(r)
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
}

func loadKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	var k kustomization
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, dir, "kustomization.yaml")))
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k
}

var kustomizeDirs = []string{"deploy/k8s/base", "deploy/k8s/overlays/production"}

// TestKustomizeFiles: everything a kustomization names exists and parses,
// without needing kubectl.
func TestKustomizeFiles(t *testing.T) {
	for _, dir := range kustomizeDirs {
		k := loadKustomization(t, dir)
		if len(k.Resources) == 0 {
			t.Errorf("%s: no resources", dir)
		}
		var files []string
		for _, r := range k.Resources {
			p := path(dir, r)
			st, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s: resource %s: %v", dir, r, err)
				continue
			}
			if st.IsDir() {
				if _, err := os.Stat(filepath.Join(p, "kustomization.yaml")); err != nil {
					t.Errorf("%s: resource dir %s has no kustomization.yaml", dir, r)
				}
				continue
			}
			files = append(files, r)
		}
		for _, g := range k.ConfigMapGenerator {
			for _, f := range g.Files {
				if _, err := os.Stat(path(dir, f)); err != nil {
					t.Errorf("%s: configMapGenerator %s: %v", dir, g.Name, err)
				}
			}
		}
		for _, p := range k.Patches {
			if p.Path != "" {
				files = append(files, p.Path)
			} else if p.Patch == "" {
				t.Errorf("%s: empty patch", dir)
			}
		}
		for _, f := range files {
			if _, err := decodeObjects(strings.NewReader(readFile(t, dir, f))); err != nil {
				t.Errorf("%s/%s: %v", dir, f, err)
			}
		}
		for _, r := range k.Replicas {
			if r.Name == "flowsentry-alerter" && r.Count != 1 {
				t.Errorf("%s: alerter replicas %d, must be 1", dir, r.Count)
			}
		}
	}
	// The raw base already satisfies the semantic checks (names without hashes).
	var objs []k8sObject
	for _, r := range loadKustomization(t, kustomizeDirs[0]).Resources {
		o, err := decodeObjects(strings.NewReader(readFile(t, kustomizeDirs[0], r)))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	checkManifests(t, "base (raw)", objs, func(cm string) (serviceConfig, bool) {
		svc := strings.TrimPrefix(cm, "flowsentry-")
		if !contains(services, svc) {
			return nil, false
		}
		return loadConfig(t, kustomizeDirs[0], "config", svc+".yaml"), true
	})
}

// TestKustomizeRender renders base and overlay with `kubectl kustomize` and
// checks the result as the cluster would get it.
func TestKustomizeRender(t *testing.T) {
	kubectl := tool(t, "kubectl", false)
	for _, dir := range kustomizeDirs {
		cmd := exec.Command(kubectl, "kustomize", dir)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
			continue
		}
		objs, err := decodeObjects(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%s rendered: %v", dir, err)
		}
		cms := map[string]k8sObject{}
		for _, o := range objs {
			if o.Kind == "ConfigMap" {
				cms[o.Metadata.Name] = o
			}
		}
		checkManifests(t, dir, objs, func(cm string) (serviceConfig, bool) {
			o, ok := cms[cm]
			if !ok {
				return nil, false
			}
			for _, svc := range services {
				if text, ok := o.Data[svc+".yaml"]; ok {
					var c map[string]any
					if err := yaml.Unmarshal([]byte(text), &c); err != nil {
						t.Fatalf("%s: ConfigMap %s: %v", dir, cm, err)
					}
					return serviceConfig(c), true
				}
			}
			return nil, false
		})
	}
}

// checkManifests holds the rules issue 7 sets for the manifests; config
// returns the service config held by a ConfigMap name.
func checkManifests(t *testing.T, where string, objs []k8sObject, config func(cm string) (serviceConfig, bool)) {
	t.Helper()
	maxWorkers := 0
	for _, tp := range topics.All() {
		if tp.Name == topics.Flows {
			maxWorkers = tp.Partitions
		}
	}
	if maxWorkers == 0 {
		t.Fatal("schemas/topics has no flows topic")
	}
	builds, _ := dockerBuilds(t)
	seen := map[string]bool{}
	for _, o := range objs {
		name := o.Metadata.Name
		switch o.Kind {
		case "HorizontalPodAutoscaler":
			if o.Spec.ScaleTargetRef.Name == "flowsentry-detector" && o.Spec.MaxReplicas > maxWorkers {
				t.Errorf("%s: detector HPA maxReplicas %d > %d flows partitions", where, o.Spec.MaxReplicas, maxWorkers)
			}
		case "Service":
			if name == "flowsentry-collector" {
				seen["collector-service"] = true
				ports := map[int]bool{}
				for _, p := range o.Spec.Ports {
					if p.Protocol == "UDP" {
						ports[p.Port] = true
					}
				}
				for _, want := range []int{2055, 4739, 6343} {
					if !ports[want] {
						t.Errorf("%s: collector Service lacks UDP %d", where, want)
					}
				}
				if o.Spec.ExternalTrafficPolicy != "Local" || o.Spec.SessionAffinity != "ClientIP" {
					t.Errorf("%s: collector Service needs externalTrafficPolicy Local (exporter address) and sessionAffinity ClientIP (templates)", where)
				}
			}
		case "Deployment", "Job":
			spec := o.Spec.Template.Spec
			if !spec.SecurityContext.RunAsNonRoot {
				t.Errorf("%s: %s %s: runAsNonRoot not set", where, o.Kind, name)
			}
			for _, c := range append(append([]container{}, spec.InitContainers...), spec.Containers...) {
				checkContainer(t, where, o, c, spec, builds, config)
			}
			if o.Kind == "Job" {
				continue
			}
			replicas := 1
			if o.Spec.Replicas != nil {
				replicas = *o.Spec.Replicas
			}
			switch name {
			case "flowsentry-detector", "flowsentry-sink":
				if replicas > maxWorkers {
					t.Errorf("%s: %s replicas %d > %d flows partitions", where, name, replicas, maxWorkers)
				}
			case "flowsentry-alerter":
				seen["alerter"] = true
				if replicas != 1 || o.Spec.Strategy.Type != "Recreate" {
					t.Errorf("%s: alerter replicas %d strategy %q: want 1 and Recreate (one state file, one notifier)", where, replicas, o.Spec.Strategy.Type)
				}
				pvc := false
				for _, v := range spec.Volumes {
					pvc = pvc || v.PersistentVolumeClaim != nil
				}
				if !pvc {
					t.Errorf("%s: alerter has no PersistentVolumeClaim for its state", where)
				}
			}
			seen[name] = true
		}
	}
	for _, want := range []string{"collector-service", "alerter", "flowsentry-collector", "flowsentry-detector", "flowsentry-sink"} {
		if !seen[want] {
			t.Errorf("%s: missing %s", where, want)
		}
	}
}

func checkContainer(t *testing.T, where string, o k8sObject, c container, spec podSpec, builds map[string]string, config func(string) (serviceConfig, bool)) {
	t.Helper()
	id := fmt.Sprintf("%s: %s/%s", where, o.Metadata.Name, c.Name)
	if len(c.Command) == 0 {
		t.Errorf("%s: no command", id)
		return
	}
	if _, ok := builds[c.Command[0]]; !ok {
		t.Errorf("%s: command %s is not built by the Dockerfile", id, c.Command[0])
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: needs cpu+memory requests and a memory limit", id)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("%s: want readOnlyRootFilesystem and allowPrivilegeEscalation false", id)
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
		if secretish(e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s: env %s must come from a Secret (secretKeyRef)", id, e.Name)
		}
	}
	if o.Kind == "Job" {
		return
	}
	svc := c.Command[0]
	// Probes on the port the config's metrics listener uses.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, pr := range []struct {
		p    *probe
		path string
	}{{c.ReadinessProbe, "/readyz"}, {c.LivenessProbe, "/healthz"}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s: want an httpGet probe on %s", id, pr.path)
			continue
		}
		if name, ok := pr.p.HTTPGet.Port.(string); ok && ports[name] == 0 {
			t.Errorf("%s: probe port %s is not a container port", id, name)
		}
	}
	// The -config file is mounted from a ConfigMap holding that service's config.
	cfgPath := flagValue(c.Command, "-config")
	var cfg serviceConfig
	for _, m := range c.VolumeMounts {
		if m.MountPath != cfgPath {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				if got, ok := config(v.ConfigMap.Name); ok {
					cfg = got
				}
			}
		}
	}
	if cfg == nil {
		t.Errorf("%s: -config %s is not mounted from a ConfigMap with %s.yaml", id, cfgPath, svc)
		return
	}
	if port, _ := strconv.Atoi(cfg.httpPort(t, svc)); ports["metrics"] != port {
		t.Errorf("%s: container port metrics=%d, the config listens on %d", id, ports["metrics"], port)
	}
	for _, ref := range cfg.envRefs() {
		if !env[ref] {
			t.Errorf("%s: the config reads $%s, which the container's env does not set", id, ref)
		}
	}
	mounted := func(p string) bool {
		for _, m := range c.VolumeMounts {
			if p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/") {
				return true
			}
		}
		return false
	}
	for _, p := range []string{dig(cfg, "inventory"), dig(cfg, "inventory", "path"), dig(cfg, "templates", "state_file"),
		dig(cfg, "state", "path"), dig(cfg, "kafka", "tls", "ca_file"), dig(cfg, "clickhouse", "tls", "ca_file")} {
		if p != "" && !mounted(p) {
			t.Errorf("%s: the config uses %s, which no volume provides (read-only root filesystem)", id, p)
		}
	}
	if svc == "collector" {
		udp := map[int]bool{}
		for _, p := range c.Ports {
			if p.Protocol == "UDP" {
				udp[p.ContainerPort] = true
			}
		}
		ls, _ := cfg["listeners"].([]any)
		for _, l := range ls {
			addr, _ := l.(map[string]any)["addr"].(string)
			_, port, _ := strings.Cut(addr[strings.LastIndex(addr, ":"):], ":")
			n, _ := strconv.Atoi(port)
			if !udp[n] {
				t.Errorf("%s: listener %s has no UDP container port", id, addr)
			}
		}
		if len(ls) == 0 {
			t.Errorf("%s: collector config lists no listeners", id)
		}
	}
}
