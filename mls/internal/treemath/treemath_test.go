package treemath

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
)

const vectors = "../../../../shared/vectors/mls/"

type treeMathVector struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

// TestTreeMathVectors checks every entry of tree-math.json at every node
// index, including the null (undefined) cases.
func TestTreeMathVectors(t *testing.T) {
	data, err := os.ReadFile(vectors + "tree-math.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []treeMathVector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(fmt.Sprintf("n_leaves=%d", v.NLeaves), func(t *testing.T) {
			n := v.NLeaves
			if got := NodeWidth(n); got != v.NNodes {
				t.Fatalf("NodeWidth = %d, want %d", got, v.NNodes)
			}
			if got := Root(n); uint32(got) != v.Root {
				t.Fatalf("Root = %d, want %d", got, v.Root)
			}
			for _, arr := range [][]*uint32{v.Left, v.Right, v.Parent, v.Sibling} {
				if uint32(len(arr)) != v.NNodes {
					t.Fatalf("vector array length %d, want %d", len(arr), v.NNodes)
				}
			}
			check := func(name string, i uint32, got NodeIndex, ok bool, want *uint32) {
				t.Helper()
				switch {
				case want == nil && ok:
					t.Errorf("%s(%d) = %d, want undefined", name, i, got)
				case want != nil && !ok:
					t.Errorf("%s(%d) undefined, want %d", name, i, *want)
				case want != nil && uint32(got) != *want:
					t.Errorf("%s(%d) = %d, want %d", name, i, got, *want)
				}
			}
			for i := range v.NNodes {
				x := NodeIndex(i)
				l, ok := Left(x)
				check("Left", i, l, ok, v.Left[i])
				r, ok := Right(x)
				check("Right", i, r, ok, v.Right[i])
				p, ok := Parent(x, n)
				check("Parent", i, p, ok, v.Parent[i])
				s, ok := Sibling(x, n)
				check("Sibling", i, s, ok, v.Sibling[i])
			}
		})
	}
}

// TestPathsAgreeWithParent checks DirectPath, Copath and CommonAncestor
// against the single-step functions on every node pair of small trees.
func TestPathsAgreeWithParent(t *testing.T) {
	for _, n := range []uint32{1, 2, 4, 8, 16, 32} {
		root := Root(n)
		for i := range NodeWidth(n) {
			x := NodeIndex(i)
			d := DirectPath(x, n)
			c := Copath(x, n)
			if len(d) != len(c) {
				t.Fatalf("n=%d x=%d: direct path %v and copath %v differ in length", n, x, d, c)
			}
			if x == root {
				if len(d) != 0 {
					t.Fatalf("n=%d: root has direct path %v", n, d)
				}
				continue
			}
			if d[len(d)-1] != root {
				t.Fatalf("n=%d x=%d: direct path %v does not end at root %d", n, x, d, root)
			}
			y := x
			for k, p := range d {
				if want, _ := Parent(y, n); want != p {
					t.Fatalf("n=%d x=%d: direct path[%d] = %d, want %d", n, x, k, p, want)
				}
				if want, _ := Sibling(y, n); want != c[k] {
					t.Fatalf("n=%d x=%d: copath[%d] = %d, want %d", n, x, k, c[k], want)
				}
				y = p
			}
			for j := range NodeWidth(n) {
				z := NodeIndex(j)
				a := CommonAncestor(x, z)
				// a must be x or on x's direct path, likewise for z, and
				// must be the lowest such node.
				onX := a == x || slices.Contains(DirectPath(x, n), a)
				onZ := a == z || slices.Contains(DirectPath(z, n), a)
				if !onX || !onZ {
					t.Fatalf("n=%d: CommonAncestor(%d,%d) = %d is not a common ancestor", n, x, z, a)
				}
				for _, b := range append([]NodeIndex{x}, DirectPath(x, n)...) {
					if b == a {
						break
					}
					if b == z || slices.Contains(DirectPath(z, n), b) {
						t.Fatalf("n=%d: CommonAncestor(%d,%d) = %d but %d is lower", n, x, z, a, b)
					}
				}
			}
		}
	}
}

func TestLeafNodeConversion(t *testing.T) {
	for l := range LeafIndex(100) {
		x := l.Node()
		if !x.IsLeaf() || Level(x) != 0 {
			t.Fatalf("leaf %d maps to non-leaf node %d", l, x)
		}
		back, ok := x.Leaf()
		if !ok || back != l {
			t.Fatalf("leaf %d -> node %d -> leaf %d, %v", l, x, back, ok)
		}
		if _, ok := (x + 1).Leaf(); ok {
			t.Fatalf("parent node %d converted to a leaf", x+1)
		}
	}
}

func TestFilteredDirectPath(t *testing.T) {
	// 8 leaves; leaf 0's direct path is 1, 3, 7 with copath 2, 5, 11.
	const n = 8
	empty := map[NodeIndex]bool{5: true}
	path, cop := FilteredDirectPath(0, n, func(c NodeIndex) bool { return empty[c] })
	if !slices.Equal(path, []NodeIndex{1, 7}) || !slices.Equal(cop, []NodeIndex{2, 11}) {
		t.Fatalf("filtered direct path = %v / %v, want [1 7] / [2 11]", path, cop)
	}
}

func TestOutsideTree(t *testing.T) {
	if _, ok := Parent(8, 4); ok {
		t.Fatal("Parent of a node outside the tree reported ok")
	}
	if len(DirectPath(100, 4)) != 0 {
		t.Fatal("direct path of a node outside the tree is not empty")
	}
	if Root(0) != 0 || NodeWidth(0) != 0 {
		t.Fatal("empty tree")
	}
}
