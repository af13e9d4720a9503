//! The one-way house, kept (docs/architecture.md, issue 14): reads every
//! production `.rs` file of `idp/src` and `admin/src` and fails, listing every
//! violation, when
//!
//! - a file of `idp/src` imports a module of a higher layer, or a capability
//!   imports a sibling capability (the layer table is [`LAYERS`]);
//! - files of one crate import each other in a circle (every strongly
//!   connected component of more than one file is reported, with one circle
//!   through it spelled out);
//! - a production file has more than [`MAX_LINES`] lines, not counting the
//!   lines of `#[cfg(test)]` items.
//!
//! What counts as an import: every `crate::`, `super::`, `self::` path (and
//! every path that starts with a name a `use` brought in) in `use` items, in
//! types, expressions, patterns and macro arguments, resolved to the file that
//! defines the item: `pub use` re-exports are followed to that file, and a path
//! that stops at a module names no file (the items used through it do).
//! `mod x;` is a declaration, not an import, and a `pub use` by itself is a
//! facade, not a use: it counts for the layers, not for circles. Test code
//! (`#[cfg(test)]` items and modules, files declared only under
//! `#[cfg(test)]`, `#[test]` functions) is skipped.
//!
//! Run it alone with `cargo test -p idp --test architecture`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// The most lines a production file may have (STYLE: "Keep files under ~800 lines").
const MAX_LINES: usize = 800;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Core,
    Storage,
    Services,
    Pipeline,
    Capabilities,
    FrontEnds,
}

/// Top-level module of `idp/src` → its layer. A module missing here is a
/// violation of its own: a new top-level module must be given a place.
const LAYERS: &[(&str, Layer)] = &[
    ("domain", Layer::Core),
    ("clock", Layer::Core),
    ("crypto", Layer::Core),
    ("config", Layer::Core),
    ("telemetry", Layer::Core),
    ("store", Layer::Storage),
    ("ephemeral", Layer::Storage),
    ("web", Layer::Services),
    ("credentials", Layer::Services),
    ("mail", Layer::Services),
    ("tokens", Layer::Services),
    ("signin", Layer::Pipeline),
    ("account", Layer::Capabilities),
    ("mfa", Layer::Capabilities),
    ("oidc", Layer::Capabilities),
    ("passkey", Layer::Capabilities),
    ("retention", Layer::Capabilities),
    ("migration", Layer::Capabilities),
    ("admin_api", Layer::FrontEnds),
    ("admin_console", Layer::FrontEnds),
    ("cli", Layer::FrontEnds),
    ("startup", Layer::FrontEnds),
    ("lib", Layer::FrontEnds),
    ("main", Layer::FrontEnds),
];

/// The console crate, seen from `idp`: a front end (idp's web layer must not
/// reach up into it).
const CONSOLE_CRATE: &str = "admin";

// ---------------------------------------------------------------------------
// The crate model: modules, the names they define and the names they import.

/// A crate's source files: path (e.g. `idp/src/web/mod.rs`) → text.
type Sources = BTreeMap<String, String>;

/// A module path from the crate root (`[]` is the root).
type ModPath = Vec<String>;

/// One name a `use` brings into a module.
#[derive(Clone, Debug)]
struct Binding {
    /// The name bound (`None` for `as _` and for globs).
    name: Option<String>,
    /// The path imported, as written (`crate`, `super`, `self` kept).
    path: Vec<String>,
    glob: bool,
    /// Inside a function body: seen by that module's own code only.
    block: bool,
}

#[derive(Debug, Default)]
struct Module {
    /// The file that holds the module's items (an inline module's file is its parent's).
    file: String,
    /// Items defined here (types, functions, constants, statics, traits, macros).
    items: BTreeSet<String>,
    uses: Vec<Binding>,
}

/// One production file.
struct FileInfo {
    module: ModPath,
    ast: syn::File,
    production_lines: usize,
}

#[derive(Default)]
struct Crate {
    modules: BTreeMap<ModPath, Module>,
    files: BTreeMap<String, FileInfo>,
    problems: Vec<String>,
}

/// `#[cfg(test)]`, `#[cfg(all(test, …))]`, `#[test]`, `#[tokio::test]`.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let path = a.path();
        if path.segments.last().is_some_and(|s| s.ident == "test") {
            return true;
        }
        if !path.is_ident("cfg") {
            return false;
        }
        match &a.meta {
            syn::Meta::List(list) => cfg_is_test_only(&list.tokens),
            _ => false,
        }
    })
}

/// A cfg predicate true only under test: `test`, or `all(…)` with such a part.
fn cfg_is_test_only(tokens: &TokenStream) -> bool {
    let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
    match tokens.as_slice() {
        [TokenTree::Ident(i)] => i == "test",
        [TokenTree::Ident(i), TokenTree::Group(g)] if i == "all" => g
            .stream()
            .into_iter()
            .collect::<Vec<_>>()
            .split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','))
            .any(|part| cfg_is_test_only(&part.iter().cloned().collect())),
        _ => false,
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The name an item defines, outside the module namespace.
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Every leaf of a `use` tree: (path, bound name, glob).
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, bool)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            if n.ident == "self" {
                out.push((prefix.clone(), prefix.last().cloned(), false));
            } else {
                let mut path = prefix.clone();
                path.push(n.ident.to_string());
                out.push((path, Some(n.ident.to_string()), false));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            let name = (r.rename != "_").then(|| r.rename.to_string());
            out.push((path, name, false));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None, true)),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix, out);
            }
        }
    }
}

fn bindings(item: &syn::ItemUse, block: bool) -> Vec<Binding> {
    let mut leaves = Vec::new();
    flatten_use(&item.tree, &mut Vec::new(), &mut leaves);
    if item.leading_colon.is_some() {
        // `use ::x…` names an external crate, whatever is in scope.
        for (path, _, _) in &mut leaves {
            if let Some(first) = path.first_mut() {
                *first = format!("::{first}");
            }
        }
    }
    leaves
        .into_iter()
        .map(|(path, name, glob)| Binding {
            name,
            path,
            glob,
            block,
        })
        .collect()
}

/// `use` items inside function bodies (and other blocks) of production code.
#[derive(Default)]
struct BlockUses(Vec<Binding>);

impl<'ast> Visit<'ast> for BlockUses {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        if is_test(item_attrs(i)) {
            return;
        }
        if let syn::Item::Use(u) = i {
            self.0.extend(bindings(u, true));
        }
        visit::visit_item(self, i);
    }
    fn visit_impl_item(&mut self, i: &'ast syn::ImplItem) {
        if let syn::ImplItem::Fn(f) = i
            && is_test(&f.attrs)
        {
            return;
        }
        visit::visit_impl_item(self, i);
    }
}

/// Lines covered by test items anywhere in a file (attributes included).
#[derive(Default)]
struct TestLines(BTreeSet<usize>);

impl TestLines {
    fn add(&mut self, span: proc_macro2::Span) {
        self.0.extend(span.start().line..=span.end().line);
    }
}

impl<'ast> Visit<'ast> for TestLines {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        if is_test(item_attrs(i)) {
            self.add(i.span());
            return;
        }
        visit::visit_item(self, i);
    }
    fn visit_impl_item(&mut self, i: &'ast syn::ImplItem) {
        if let syn::ImplItem::Fn(f) = i
            && is_test(&f.attrs)
        {
            self.add(i.span());
            return;
        }
        visit::visit_impl_item(self, i);
    }
}

impl Crate {
    /// Loads the crate whose root file is `root`, following `mod x;` from there.
    fn load(sources: &Sources, root: &str) -> Crate {
        let mut krate = Crate::default();
        let dir = root
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_string());
        krate.load_file(sources, root, Vec::new(), &dir);
        krate
    }

    fn load_file(&mut self, sources: &Sources, path: &str, module: ModPath, child_dir: &str) {
        let Some(text) = sources.get(path) else {
            self.problems
                .push(format!("{path}: declared but not found"));
            return;
        };
        let ast = match syn::parse_file(text) {
            Ok(ast) => ast,
            Err(e) => {
                self.problems.push(format!("{path}: does not parse: {e}"));
                return;
            }
        };
        let mut tests = TestLines::default();
        tests.visit_file(&ast);
        let production_lines = text.lines().count().saturating_sub(tests.0.len());
        self.load_items(sources, path, &module, child_dir, &ast.items);
        self.files.insert(
            path.to_string(),
            FileInfo {
                module,
                ast,
                production_lines,
            },
        );
    }

    fn load_items(
        &mut self,
        sources: &Sources,
        file: &str,
        module: &ModPath,
        child_dir: &str,
        items: &[syn::Item],
    ) {
        let mut this = Module {
            file: file.to_string(),
            ..Module::default()
        };
        let mut children = Vec::new();
        for item in items {
            if is_test(item_attrs(item)) {
                continue;
            }
            match item {
                syn::Item::Mod(m) => children.push(m),
                syn::Item::Use(u) => this.uses.extend(bindings(u, false)),
                _ => {
                    if let Some(name) = item_name(item) {
                        this.items.insert(name);
                    }
                    let mut block = BlockUses::default();
                    block.visit_item(item);
                    this.uses.extend(block.0);
                }
            }
        }
        self.modules.insert(module.clone(), this);
        for m in children {
            let name = m.ident.to_string();
            let mut child = module.clone();
            child.push(name.clone());
            let dir = format!("{child_dir}/{name}");
            match &m.content {
                Some((_, items)) => self.load_items(sources, file, &child, &dir, items),
                None => {
                    let flat = format!("{child_dir}/{name}.rs");
                    let nested = format!("{child_dir}/{name}/mod.rs");
                    let path = if sources.contains_key(&flat) {
                        flat
                    } else {
                        nested
                    };
                    self.load_file(sources, &path, child, &dir);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Name resolution: a path, seen from a module, to the file that defines it.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Res {
    Module(ModPath),
    /// An item, defined in this file.
    Item(String),
    /// Outside the crate (`std`, a dependency): its crate name.
    External(String),
    /// `Self`, a local variable, a generic parameter, something unresolved.
    Unknown,
}

const MAX_DEPTH: usize = 24;

impl Crate {
    /// What `name` means in module `m`. `lexical`: as its own code sees it
    /// (function-body `use`s included). `prefer_module`: a path goes on after it.
    fn lookup(
        &self,
        m: &[String],
        name: &str,
        prefer_module: bool,
        lexical: bool,
        depth: usize,
    ) -> Option<Res> {
        if depth > MAX_DEPTH {
            return None;
        }
        let module = self.modules.get(m)?;
        let mut child = m.to_vec();
        child.push(name.to_string());
        let as_module = self
            .modules
            .contains_key(&child)
            .then_some(Res::Module(child));
        let as_item = module
            .items
            .contains(name)
            .then(|| Res::Item(module.file.clone()));
        let direct = if prefer_module {
            as_module.or(as_item)
        } else {
            as_item.or(as_module)
        };
        if direct.is_some() {
            return direct;
        }
        let visible = |b: &&Binding| lexical || !b.block;
        let mut external = None;
        for b in module.uses.iter().filter(visible) {
            if !b.glob && b.name.as_deref() == Some(name) {
                match self.resolve(m, &b.path, prefer_module, depth + 1) {
                    Res::External(c) => external = Some(Res::External(c)),
                    Res::Unknown => {}
                    found => return Some(found),
                }
            }
        }
        if external.is_some() {
            return external;
        }
        for b in module.uses.iter().filter(visible).filter(|b| b.glob) {
            if let Res::Module(g) = self.resolve(m, &b.path, true, depth + 1)
                && let Some(found) = self.lookup(&g, name, prefer_module, false, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }

    /// What `path` means in module `ctx` (lexically, as that module's code sees it).
    fn resolve(&self, ctx: &[String], path: &[String], prefer_module: bool, depth: usize) -> Res {
        let Some((first, rest)) = path.split_first() else {
            return Res::Unknown;
        };
        let mut current = match first.as_str() {
            "crate" => Res::Module(Vec::new()),
            "self" => Res::Module(ctx.to_vec()),
            "super" => match ctx.split_last() {
                Some((_, parent)) => Res::Module(parent.to_vec()),
                None => return Res::Unknown,
            },
            "Self" => return Res::Unknown,
            name if name.starts_with("::") => return Res::External(name[2..].to_string()),
            name => match self.lookup(ctx, name, prefer_module || !rest.is_empty(), true, depth) {
                Some(found) => found,
                None => return Res::External(name.to_string()),
            },
        };
        for (i, segment) in rest.iter().enumerate() {
            let last = i + 1 == rest.len();
            current = match current {
                Res::Module(m) if segment == "super" => match m.split_last() {
                    Some((_, parent)) => Res::Module(parent.to_vec()),
                    None => return Res::Unknown,
                },
                Res::Module(m) if segment == "self" => Res::Module(m),
                Res::Module(m) => {
                    match self.lookup(&m, segment, prefer_module || !last, false, depth) {
                        Some(found) => found,
                        None => return Res::Unknown,
                    }
                }
                // An enum's variant, an associated item: the type's file.
                done => return done,
            };
        }
        current
    }
}

// ---------------------------------------------------------------------------
// References: every path a production file uses, and the edges they make.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Code, a private `use`: the file depends on the target.
    Use,
    /// A `pub use` re-export by itself: a facade (layers only, not circles).
    Reexport,
}

#[derive(Clone, Debug)]
struct Edge {
    from: String,
    /// A file, or `crate <name>` for another crate of the workspace.
    to: String,
    /// The path as written, for the report.
    via: String,
    kind: Kind,
}

/// Paths in one file, each with the module it is written in.
struct Refs {
    module: ModPath,
    found: Vec<(ModPath, Vec<String>, Kind)>,
}

impl Refs {
    fn record(&mut self, path: Vec<String>, kind: Kind) {
        if !path.is_empty() {
            self.found.push((self.module.clone(), path, kind));
        }
    }

    /// `a::b::c` sequences in macro arguments and attribute arguments.
    fn scan(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let colon =
            |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => {
                    self.scan(g.stream());
                    i += 1;
                }
                TokenTree::Ident(first) => {
                    // Not the tail of `::x` or of `a.b`.
                    let after_colons =
                        i >= 2 && colon(tokens.get(i - 1)) && colon(tokens.get(i - 2));
                    let after_dot = i >= 1
                        && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
                    let mut path = vec![first.to_string()];
                    let mut j = i + 1;
                    while colon(tokens.get(j)) && colon(tokens.get(j + 1)) {
                        match tokens.get(j + 2) {
                            Some(TokenTree::Ident(next)) => {
                                path.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    if path.len() > 1 && !after_colons && !after_dot {
                        self.record(path, Kind::Use);
                    }
                    i = j.max(i + 1);
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => i += 1,
            }
        }
    }
}

impl<'ast> Visit<'ast> for Refs {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        if is_test(item_attrs(i)) {
            return;
        }
        match i {
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    self.module.push(m.ident.to_string());
                    for item in items {
                        self.visit_item(item);
                    }
                    self.module.pop();
                }
            }
            syn::Item::Use(u) => {
                let kind = if matches!(u.vis, syn::Visibility::Inherited) {
                    Kind::Use
                } else {
                    Kind::Reexport
                };
                for b in bindings(u, false) {
                    if !b.glob {
                        self.record(b.path, kind);
                    }
                }
            }
            _ => visit::visit_item(self, i),
        }
    }
    fn visit_impl_item(&mut self, i: &'ast syn::ImplItem) {
        if let syn::ImplItem::Fn(f) = i
            && is_test(&f.attrs)
        {
            return;
        }
        visit::visit_impl_item(self, i);
    }
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(in crate::store)` names a module, it imports nothing.
    }
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &a.meta
            && !list.path.is_ident("cfg")
        {
            self.scan(list.tokens.clone());
        }
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.scan(m.tokens.clone());
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let mut segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if p.leading_colon.is_some()
            && let Some(first) = segments.first_mut()
        {
            // `::x::…` names an external crate, whatever is in scope.
            *first = format!("::{first}");
        }
        self.record(segments, Kind::Use);
        visit::visit_path(self, p);
    }
}

impl Crate {
    /// Every edge file → file (or file → other crate) of the crate.
    fn edges(&self, other_crates: &[&str]) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (path, file) in &self.files {
            let mut refs = Refs {
                module: file.module.clone(),
                found: Vec::new(),
            };
            // Items only: inline modules are entered by visit_item.
            for item in &file.ast.items {
                refs.visit_item(item);
            }
            for (ctx, segments, kind) in refs.found {
                let to = match self.resolve(&ctx, &segments, false, 0) {
                    Res::Item(target) if target != *path => target,
                    Res::External(name) if other_crates.contains(&name.as_str()) => {
                        format!("crate {name}")
                    }
                    _ => continue,
                };
                edges.push(Edge {
                    from: path.clone(),
                    to,
                    via: segments.join("::"),
                    kind,
                });
            }
        }
        edges
    }
}

// ---------------------------------------------------------------------------
// Circles: strongly connected components (Tarjan), and one circle through each.

/// Components of more than one node, each sorted, in a stable order.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found.sort();
    t.found
}

/// A shortest circle from the component's first node back to it, inside the component.
fn one_circle(graph: &BTreeMap<String, BTreeSet<String>>, component: &[String]) -> Vec<String> {
    let inside: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let Some(start) = component.first() else {
        return Vec::new();
    };
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if w == start {
                let mut back = vec![v];
                while let Some(&prev) = came_from.get(back[back.len() - 1]) {
                    back.push(prev);
                }
                // back is v, …, start: walk it the other way, and close the circle.
                let mut walk: Vec<String> = back.iter().rev().map(|s| s.to_string()).collect();
                walk.push(start.clone());
                return walk;
            }
            if inside.contains(w) && !came_from.contains_key(w) && w != start {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

// ---------------------------------------------------------------------------
// The rules.

/// The top-level module a file of `<crate>/src/` belongs to (`lib`, `main` for the roots).
fn top_module(file: &str) -> &str {
    let rest = file.split_once("/src/").map_or(file, |(_, r)| r);
    let first = rest.split('/').next().unwrap_or(rest);
    first.strip_suffix(".rs").unwrap_or(first)
}

fn layer(top: &str) -> Option<Layer> {
    LAYERS.iter().find(|(m, _)| *m == top).map(|(_, l)| *l)
}

#[derive(Debug, Default)]
struct Report {
    layers: Vec<String>,
    circles: Vec<String>,
    sizes: Vec<String>,
    other: Vec<String>,
}

impl Report {
    fn is_empty(&self) -> bool {
        self.layers.is_empty()
            && self.circles.is_empty()
            && self.sizes.is_empty()
            && self.other.is_empty()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (title, list) in [
            ("imports against the layers", &self.layers),
            ("import circles", &self.circles),
            ("production files over the size limit", &self.sizes),
            ("files the check could not read", &self.other),
        ] {
            if !list.is_empty() {
                let _ = writeln!(out, "\n{} {title}:", list.len());
                for v in list {
                    let _ = writeln!(out, "  - {v}");
                }
            }
        }
        out
    }
}

/// Checks one crate. `layered`: apply idp's layer table.
fn check_crate(krate: &Crate, layered: bool, other_crates: &[&str], report: &mut Report) {
    report.other.extend(krate.problems.iter().cloned());
    let edges = krate.edges(other_crates);

    for (path, file) in &krate.files {
        if file.production_lines > MAX_LINES {
            report.sizes.push(format!(
                "{path}: {} production lines (limit {MAX_LINES})",
                file.production_lines
            ));
        }
    }

    if layered {
        let mut unknown = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for e in &edges {
            let from_top = top_module(&e.from);
            let Some(from) = layer(from_top) else {
                unknown.insert(from_top.to_string());
                continue;
            };
            let (to_top, to) = match e.to.strip_prefix("crate ") {
                Some(name) => (name, Some(Layer::FrontEnds)),
                None => (top_module(&e.to), layer(top_module(&e.to))),
            };
            let Some(to) = to else {
                unknown.insert(to_top.to_string());
                continue;
            };
            let why = if to > from {
                format!("{from:?} imports {to:?}")
            } else if from == Layer::Capabilities && to == Layer::Capabilities && from_top != to_top
            {
                "a capability imports a sibling capability".to_string()
            } else {
                continue;
            };
            if seen.insert((e.from.clone(), e.to.clone())) {
                report
                    .layers
                    .push(format!("{} -> {} ({why}: `{}`)", e.from, e.to, e.via));
            }
        }
        for top in unknown {
            report.layers.push(format!(
                "top-level module `{top}` has no layer: give it one in LAYERS and docs/architecture.md"
            ));
        }
    }

    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut via: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in edges
        .iter()
        .filter(|e| e.kind == Kind::Use && !e.to.starts_with("crate "))
    {
        graph
            .entry(e.from.clone())
            .or_default()
            .insert(e.to.clone());
        via.entry((e.from.clone(), e.to.clone()))
            .or_insert_with(|| e.via.clone());
    }
    for component in circles(&graph) {
        let circle = one_circle(&graph, &component);
        let steps: Vec<String> = circle
            .windows(2)
            .map(|w| {
                format!(
                    "{} -> {} (`{}`)",
                    w[0],
                    w[1],
                    via[&(w[0].clone(), w[1].clone())]
                )
            })
            .collect();
        report.circles.push(format!(
            "{} files in a circle: {}\n      e.g. {}",
            component.len(),
            component.join(", "),
            steps.join("\n           ")
        ));
    }
}

/// Every `.rs` file under `dir`, keyed by its path relative to `base`.
fn read_sources(base: &Path, dir: &str, into: &mut Sources) {
    fn walk(base: &Path, at: &Path, into: &mut Sources) {
        let Ok(entries) = std::fs::read_dir(at) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let key = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                if let Ok(text) = std::fs::read_to_string(&path) {
                    into.insert(key, text);
                }
            }
        }
    }
    walk(base, &base.join(dir), into);
}

fn check_workspace(sources: &Sources) -> Report {
    let mut report = Report::default();
    let dump = std::env::var_os("ARCHITECTURE_EDGES").is_some();
    for (root, layered) in [
        ("idp/src/lib.rs", true),
        ("idp/src/main.rs", true),
        ("admin/src/lib.rs", false),
        ("admin/src/main.rs", false),
    ] {
        let others: &[&str] = if layered { &[CONSOLE_CRATE] } else { &[] };
        let krate = Crate::load(sources, root);
        if dump {
            // ARCHITECTURE_EDGES=1 cargo test -p idp --test architecture -- --nocapture
            for e in krate.edges(others) {
                println!("{} -> {} [{:?}] `{}`", e.from, e.to, e.kind, e.via);
            }
        }
        check_crate(&krate, layered, others, &mut report);
    }
    report
}

#[test]
fn layers_circles_and_file_sizes_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = Sources::new();
    read_sources(&root, "idp/src", &mut sources);
    read_sources(&root, "admin/src", &mut sources);
    assert!(
        sources.contains_key("idp/src/lib.rs"),
        "idp/src/lib.rs not found under {root:?}"
    );
    let report = check_workspace(&sources);
    assert!(
        report.is_empty(),
        "the one-way house (docs/architecture.md) is broken:\n{}",
        report.render()
    );
}

// ---------------------------------------------------------------------------
// The check, checked on tiny crates.

fn tiny(files: &[(&str, &str)]) -> Sources {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

fn edge_set(sources: &Sources, root: &str) -> BTreeSet<(String, String)> {
    Crate::load(sources, root)
        .edges(&[CONSOLE_CRATE])
        .into_iter()
        .filter(|e| e.kind == Kind::Use)
        .map(|e| (e.from, e.to))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn graph(list: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in list {
        g.entry(a.to_string()).or_default().insert(b.to_string());
        g.entry(b.to_string()).or_default();
    }
    g
}

#[test]
fn tarjan_finds_each_component_of_more_than_one_node() {
    let g = graph(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
        ("e", "f"),
        ("f", "f"),
    ]);
    assert_eq!(
        circles(&g),
        vec![vec!["a", "b", "c"], vec!["d", "e"]]
            .into_iter()
            .map(|c| c.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert!(circles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
}

#[test]
fn one_circle_walks_the_edges_in_order() {
    let g = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("b", "a2"), ("a2", "c")]);
    let component: Vec<String> = ["a", "a2", "b", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(one_circle(&g, &component), vec!["a", "b", "c", "a"]);
    let g = graph(&[("x", "y"), ("y", "x")]);
    assert_eq!(
        one_circle(&g, &["x".to_string(), "y".to_string()]),
        vec!["x", "y", "x"]
    );
}

#[test]
fn paths_resolve_to_the_file_that_defines_the_item() {
    let src = tiny(&[
        ("c/src/lib.rs", "pub mod web; pub mod mfa; pub mod account;"),
        // mod.rs re-exports: a facade, not an import of its own.
        (
            "c/src/web/mod.rs",
            "mod state; pub use state::AppState; pub mod ui;",
        ),
        ("c/src/web/state.rs", "pub struct AppState;"),
        ("c/src/web/ui.rs", "pub fn render() {}"),
        // A module imported by name, then an item used through it in a body.
        ("c/src/mfa.rs", "pub fn begin() {}"),
        (
            "c/src/account.rs",
            "use crate::mfa; use crate::web; \
             fn f(_: web::AppState) { mfa::begin(); crate::web::ui::render(); }",
        ),
    ]);
    assert_eq!(
        edge_set(&src, "c/src/lib.rs"),
        pairs(&[
            ("c/src/account.rs", "c/src/mfa.rs"),
            ("c/src/account.rs", "c/src/web/state.rs"),
            ("c/src/account.rs", "c/src/web/ui.rs"),
        ])
    );
}

#[test]
fn test_code_and_module_declarations_are_not_imports() {
    let src = tiny(&[
        ("c/src/lib.rs", "pub mod a; pub mod b;"),
        (
            "c/src/a/mod.rs",
            "mod child; #[cfg(test)] mod tests; pub fn shared() {} \
             #[cfg(test)] mod inline { use super::*; use crate::b::B; fn t() { shared(); } }",
        ),
        ("c/src/a/child.rs", "pub fn run() { super::shared() }"),
        ("c/src/a/tests.rs", "use super::*; use crate::b::B;"),
        (
            "c/src/b.rs",
            "pub struct B; #[test] fn t() { crate::a::shared(); }",
        ),
    ]);
    let krate = Crate::load(&src, "c/src/lib.rs");
    assert!(!krate.files.contains_key("c/src/a/tests.rs"));
    assert_eq!(
        edge_set(&src, "c/src/lib.rs"),
        pairs(&[("c/src/a/child.rs", "c/src/a/mod.rs")])
    );
}

#[test]
fn a_mod_rs_that_uses_its_child_and_holds_shared_items_is_a_circle() {
    let src = tiny(&[
        ("c/src/lib.rs", "mod m;"),
        (
            "c/src/m/mod.rs",
            "mod child; pub struct Shared; fn go() { child::run() }",
        ),
        (
            "c/src/m/child.rs",
            "use super::Shared; pub fn run() -> Option<Shared> { None }",
        ),
    ]);
    let mut report = Report::default();
    check_crate(&Crate::load(&src, "c/src/lib.rs"), false, &[], &mut report);
    assert_eq!(report.circles.len(), 1, "{}", report.render());
    assert!(report.circles[0].contains("c/src/m/child.rs, c/src/m/mod.rs"));
}

#[test]
fn globs_renames_macros_and_trait_imports_count() {
    let src = tiny(&[
        ("c/src/lib.rs", "mod a; mod b; mod c; mod d; mod e;"),
        ("c/src/a.rs", "pub fn helper() {} pub trait Ext {}"),
        ("c/src/b.rs", "use crate::a::*; fn f() { helper() }"),
        (
            "c/src/c.rs",
            "use crate::a::Ext as _; use crate::a as alias; fn f() { alias::helper() }",
        ),
        (
            "c/src/d.rs",
            "fn f() { format!(\"{}\", crate::e::NAME); tracing::info!(x = %super::e::NAME); }",
        ),
        (
            "c/src/e.rs",
            "pub const NAME: &str = \"\"; pub(crate) use std::fmt; fn f(x: fmt::Arguments) {}",
        ),
    ]);
    assert_eq!(
        edge_set(&src, "c/src/lib.rs"),
        pairs(&[
            ("c/src/b.rs", "c/src/a.rs"),
            ("c/src/c.rs", "c/src/a.rs"),
            ("c/src/d.rs", "c/src/e.rs"),
        ])
    );
}

#[test]
fn layers_allow_down_and_refuse_up_and_sideways() {
    let src = tiny(&[
        (
            "idp/src/lib.rs",
            "pub mod domain; pub mod store; pub mod web; pub mod account; pub mod mfa; pub mod cli;",
        ),
        ("idp/src/domain.rs", "pub struct Email;"),
        // Up: storage imports the web layer, and the web layer the console crate.
        (
            "idp/src/store.rs",
            "use crate::domain::Email; pub fn s(_: crate::web::Page) {}",
        ),
        (
            "idp/src/web.rs",
            "pub struct Page; fn ip() { admin::client_ip() }",
        ),
        // Sideways: one capability into another.
        (
            "idp/src/account.rs",
            "pub fn a() { crate::mfa::m(); crate::store::s(crate::web::Page) }",
        ),
        ("idp/src/mfa.rs", "pub fn m() {}"),
        // Front ends may use anything below, and the console crate.
        (
            "idp/src/cli.rs",
            "fn c() { crate::account::a(); crate::mfa::m(); admin::client_ip() }",
        ),
    ]);
    let mut report = Report::default();
    check_crate(
        &Crate::load(&src, "idp/src/lib.rs"),
        true,
        &[CONSOLE_CRATE],
        &mut report,
    );
    assert_eq!(
        report.layers,
        vec![
            "idp/src/account.rs -> idp/src/mfa.rs (a capability imports a sibling capability: `crate::mfa::m`)",
            "idp/src/store.rs -> idp/src/web.rs (Storage imports Services: `crate::web::Page`)",
            "idp/src/web.rs -> crate admin (Services imports FrontEnds: `admin::client_ip`)",
        ],
        "{}",
        report.render()
    );
    assert!(report.circles.is_empty(), "{}", report.render());
}

#[test]
fn a_leading_colon_does_not_hide_a_crate() {
    for web in [
        "pub struct Page; use ::admin::client_ip; fn f() { client_ip() }",
        "pub struct Page; fn f() { ::admin::header_text() }",
    ] {
        let src = tiny(&[("idp/src/lib.rs", "pub mod web;"), ("idp/src/web.rs", web)]);
        let mut report = Report::default();
        check_crate(
            &Crate::load(&src, "idp/src/lib.rs"),
            true,
            &[CONSOLE_CRATE],
            &mut report,
        );
        assert_eq!(report.layers.len(), 1, "{web}: {}", report.render());
        assert!(
            report.layers[0]
                .starts_with("idp/src/web.rs -> crate admin (Services imports FrontEnds"),
            "{}",
            report.render()
        );
    }
}

#[test]
fn test_lines_do_not_count() {
    let mut production = String::new();
    for i in 0..MAX_LINES {
        let _ = writeln!(production, "pub const C{i}: u8 = 0;");
    }
    let mut with_tests = production.clone();
    with_tests.push_str("#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {}\n}\n");
    let src = tiny(&[
        ("c/src/lib.rs", "mod a; mod b;"),
        ("c/src/a.rs", &with_tests),
        ("c/src/b.rs", &format!("{production}pub const D: u8 = 0;\n")),
    ]);
    let krate = Crate::load(&src, "c/src/lib.rs");
    assert_eq!(krate.files["c/src/a.rs"].production_lines, MAX_LINES);
    let mut report = Report::default();
    check_crate(&krate, false, &[], &mut report);
    assert_eq!(
        report.sizes,
        vec![format!(
            "c/src/b.rs: {} production lines (limit {MAX_LINES})",
            MAX_LINES + 1
        )]
    );
}
