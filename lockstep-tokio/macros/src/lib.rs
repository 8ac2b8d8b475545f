//! `#[tokio::main]`, `#[tokio::test]` and `select!` for lockstep-tokio.
//!
//! Use them through the `lockstep-tokio` crate (imported as `tokio`): the
//! expansions call `::tokio::__private` (or the path given with `crate =
//! "…"`, as in tokio), so this crate does nothing alone. Attribute input
//! is validated here, with errors that point at the offending token and
//! say what is accepted.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, ExprLit, ItemFn, Lit, Pat, ReturnType, Token, parse_macro_input};

/// Runs `async fn main` on a multi-threaded (default) or current-thread
/// real tokio runtime.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry(attr, item, Kind::Main { multi_thread: true })
}

/// Runs `async fn main` on a real tokio runtime, without the
/// `rt-multi-thread` feature: only `flavor = "current_thread"`.
#[proc_macro_attribute]
pub fn main_rt(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry(
        attr,
        item,
        Kind::Main {
            multi_thread: false,
        },
    )
}

/// A test of tokio code, run in lockstep simulations over many seeds.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry(attr, item, Kind::Test)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Main { multi_thread: bool },
    Test,
}

const MAIN_OPTIONS: &str = "flavor, worker_threads, crate";
const TEST_OPTIONS: &str = "flavor, worker_threads, start_paused, crate, seed, seeds, max_time";

#[derive(Default)]
struct Options {
    multi_thread: Option<(bool, Span)>,
    worker_threads: Option<(u64, Span)>,
    krate: Option<syn::Path>,
    start_paused: Option<bool>,
    seed: Option<u64>,
    seeds: Option<u64>,
    max_time: Option<u64>,
}

fn lit_int(expr: &Expr, what: &str) -> syn::Result<u64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i
            .base10_parse::<u64>()
            .map_err(|_| syn::Error::new(i.span(), format!("`{what}` must fit in 64 bits"))),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if what == "seed" => parse_seed(&s.value()).ok_or_else(|| {
            syn::Error::new(
                s.span(),
                "invalid seed: a 64-bit unsigned integer, in hex with a 0x prefix (\"0x1a7\") \
                 or in decimal (\"423\")",
            )
        }),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{what}` must be a whole number literal, e.g. `{what} = 4`"),
        )),
    }
}

fn lit_str(expr: &Expr, what: &str, example: &str) -> syn::Result<syn::LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{what}` must be a string literal, e.g. `{what} = {example}`"),
        )),
    }
}

fn parse_seed(s: &str) -> Option<u64> {
    let t: String = s.trim().chars().filter(|&c| c != '_').collect();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// `"500ms"`, `"30s"`, `"2m"`, `"1h"` in nanoseconds.
fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let num: f64 = num.trim().parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    let nanos = num * scale;
    (nanos.is_finite() && nanos >= 1.0 && nanos < u64::MAX as f64).then_some(nanos as u64)
}

impl Options {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta, kind: Kind) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let test_only = ["start_paused", "seed", "seeds", "max_time"];
        if kind != Kind::Test && test_only.contains(&key.as_str()) {
            return Err(meta.error(format!(
                "`{key}` is an option of #[tokio::test]; #[tokio::main] accepts: {MAIN_OPTIONS}"
            )));
        }
        let expr: Expr = meta.value()?.parse()?;
        match key.as_str() {
            "flavor" => {
                let s = lit_str(&expr, "flavor", "\"current_thread\"")?;
                let multi = match s.value().as_str() {
                    "current_thread" => false,
                    "multi_thread" => true,
                    other => {
                        return Err(syn::Error::new(
                            s.span(),
                            format!(
                                "unknown runtime flavor `{other}`: expected \"current_thread\" \
                                 or \"multi_thread\""
                            ),
                        ));
                    }
                };
                self.multi_thread = Some((multi, s.span()));
            }
            "worker_threads" => {
                let n = lit_int(&expr, "worker_threads")?;
                if n == 0 {
                    return Err(syn::Error::new(
                        expr.span(),
                        "`worker_threads` must be at least 1",
                    ));
                }
                self.worker_threads = Some((n, expr.span()));
            }
            "crate" => {
                let s = lit_str(&expr, "crate", "\"tokio\"")?;
                self.krate = Some(s.parse()?);
            }
            "start_paused" => match &expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => self.start_paused = Some(b.value),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "`start_paused` must be `true` or `false`",
                    ));
                }
            },
            "seed" => self.seed = Some(lit_int(&expr, "seed")?),
            "seeds" => {
                let n = lit_int(&expr, "seeds")?;
                if n == 0 {
                    return Err(syn::Error::new(expr.span(), "`seeds` must be at least 1"));
                }
                self.seeds = Some(n);
            }
            "max_time" => {
                let s = lit_str(&expr, "max_time", "\"30s\"")?;
                self.max_time = Some(parse_duration(&s.value()).ok_or_else(|| {
                    syn::Error::new(
                        s.span(),
                        "invalid duration: a number and a unit (ns, us, ms, s, m, h), e.g. \"30s\"",
                    )
                })?);
            }
            _ => {
                let accepted = if kind == Kind::Test {
                    TEST_OPTIONS
                } else {
                    MAIN_OPTIONS
                };
                return Err(syn::Error::new(
                    meta.path.span(),
                    format!("unknown option `{key}`: accepted options are {accepted}"),
                ));
            }
        }
        Ok(())
    }
}

fn entry(attr: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| options.parse(meta, kind));
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    let result = match kind {
        Kind::Main { multi_thread } => expand_main(options, func, multi_thread),
        Kind::Test => expand_test(options, func),
    };
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}

fn check_signature(func: &ItemFn, what: &str) -> syn::Result<()> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!("{what} goes on an `async fn`"),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("a {what} function takes no arguments"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("a {what} function cannot be generic"),
        ));
    }
    Ok(())
}

fn krate(options: &Options) -> TokenStream2 {
    match &options.krate {
        Some(path) => quote!(#path),
        None => quote!(::tokio),
    }
}

fn expand_main(options: Options, func: ItemFn, multi_available: bool) -> syn::Result<TokenStream2> {
    check_signature(&func, "#[tokio::main]")?;
    let multi = match options.multi_thread {
        Some((true, span)) if !multi_available => {
            return Err(syn::Error::new(
                span,
                "the `multi_thread` flavor needs the `rt-multi-thread` feature of lockstep-tokio",
            ));
        }
        Some((multi, _)) => multi,
        None if !multi_available => {
            return Err(syn::Error::new(
                Span::call_site(),
                "the default runtime flavor is `multi_thread`, but the `rt-multi-thread` \
                 feature is disabled: enable it, or write #[tokio::main(flavor = \"current_thread\")]",
            ));
        }
        None => true,
    };
    if let (Some((_, span)), false) = (options.worker_threads, multi) {
        return Err(syn::Error::new(
            span,
            "`worker_threads` applies to the `multi_thread` flavor only",
        ));
    }
    let workers = match options.worker_threads {
        Some((n, _)) => {
            let n = n as usize;
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    let krate = krate(&options);
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
        ..
    } = func;
    sig.asyncness = None;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #krate::__private::main_runtime(#multi, #workers).block_on(async #block)
        }
    })
}

fn expand_test(options: Options, func: ItemFn) -> syn::Result<TokenStream2> {
    check_signature(&func, "#[tokio::test]")?;
    if let Some(attr) = func.attrs.iter().find(|a| a.path().is_ident("test")) {
        return Err(syn::Error::new(
            attr.span(),
            "remove #[test]: #[tokio::test] already makes the function a test",
        ));
    }
    let krate = krate(&options);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    let ignored = attrs.iter().any(|a| a.path().is_ident("ignore"));
    let name = &sig.ident;
    let output = match &sig.output {
        ReturnType::Default => quote!(),
        ReturnType::Type(arrow, ty) => quote!(#arrow #ty),
    };
    let opt = |v: Option<u64>| match v {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let multi = options.multi_thread.is_some_and(|(m, _)| m);
    let workers = opt(options.worker_threads.map(|(n, _)| n));
    let start_paused = options.start_paused.unwrap_or(false);
    let seed = opt(options.seed);
    let seeds = opt(options.seeds);
    let max_time = opt(options.max_time);
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            async fn __lockstep_tokio_test_body() #output #block
            #krate::__private::run_test(
                #krate::__private::TestMeta {
                    name: ::core::stringify!(#name),
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    package: ::core::env!("CARGO_PKG_NAME"),
                    crate_name: ::core::env!("CARGO_CRATE_NAME"),
                    ignored: #ignored,
                },
                #krate::__private::TestOptions {
                    multi_thread: #multi,
                    worker_threads: #workers,
                    start_paused: #start_paused,
                    seed: #seed,
                    seeds: #seeds,
                    max_time_nanos: #max_time,
                },
                __lockstep_tokio_test_body,
            );
        }
    })
}

// ---------------------------------------------------------------- select!

struct Branch {
    pat: Pat,
    fut: Expr,
    cond: Option<Expr>,
    handler: Expr,
}

struct Select {
    krate: TokenStream2,
    biased: bool,
    branches: Vec<Branch>,
    otherwise: Option<Expr>,
}

mod kw {
    syn::custom_keyword!(biased);
}

fn is_blocklike(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Block(_)
            | Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
            | Expr::TryBlock(_)
            | Expr::Const(_)
    )
}

fn handler(input: ParseStream) -> syn::Result<Expr> {
    let e = Expr::parse_with_earlier_boundary_rule(input)?;
    if !input.is_empty() {
        if is_blocklike(&e) {
            let _: Option<Token![,]> = input.parse()?;
        } else {
            input.parse::<Token![,]>().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "expected `,` after this select! branch's handler",
                )
            })?;
        }
    }
    Ok(e)
}

impl Parse for Select {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let inner;
        syn::parenthesized!(inner in input);
        let krate: TokenStream2 = inner.parse()?;
        let biased = if input.peek(kw::biased) && input.peek2(Token![;]) {
            input.parse::<kw::biased>()?;
            input.parse::<Token![;]>()?;
            true
        } else {
            false
        };
        let mut branches = Vec::new();
        let mut otherwise = None;
        while !input.is_empty() {
            if input.peek(Token![else]) {
                let kw: Token![else] = input.parse()?;
                if otherwise.is_some() {
                    return Err(syn::Error::new(
                        kw.span,
                        "select! has at most one `else` branch",
                    ));
                }
                input.parse::<Token![=>]>()?;
                otherwise = Some(handler(input)?);
                continue;
            }
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            input.parse::<Token![=]>()?;
            let fut: Expr = input.parse()?;
            let cond = if input.peek(Token![,]) && input.peek2(Token![if]) {
                input.parse::<Token![,]>()?;
                input.parse::<Token![if]>()?;
                Some(input.parse()?)
            } else {
                None
            };
            input.parse::<Token![=>]>()?;
            let handler = handler(input)?;
            branches.push(Branch {
                pat,
                fut,
                cond,
                handler,
            });
        }
        if branches.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "select! needs at least one `pattern = future => handler` branch",
            ));
        }
        if branches.len() > 64 {
            return Err(syn::Error::new(
                Span::call_site(),
                "select! takes at most 64 branches",
            ));
        }
        Ok(Select {
            krate,
            biased,
            branches,
            otherwise,
        })
    }
}

/// A pattern with its `mut` and `ref` binding modifiers removed: matched
/// against a reference to check whether a branch's output fits, without
/// moving it.
struct Shape;

impl VisitMut for Shape {
    fn visit_pat_ident_mut(&mut self, p: &mut syn::PatIdent) {
        p.by_ref = None;
        p.mutability = None;
        syn::visit_mut::visit_pat_ident_mut(self, p);
    }
}

/// The body of `select!` (called by lockstep-tokio's `select!` with the
/// crate's path first).
#[doc(hidden)]
#[proc_macro]
pub fn select_impl(input: TokenStream) -> TokenStream {
    let select = parse_macro_input!(input as Select);
    expand_select(select).into()
}

fn expand_select(s: Select) -> TokenStream2 {
    let krate = &s.krate;
    let n = s.branches.len();
    let n32 = n as u32;
    let site = Span::mixed_site();
    let out_ty = format_ident!("__SelectOut", span = site);
    let disabled = format_ident!("__disabled", span = site);
    let cx = format_ident!("__cx", span = site);
    let out = format_ident!("__out", span = site);
    let value = format_ident!("__value", span = site);
    let start = format_ident!("__start", span = site);
    let pending = format_ident!("__pending", span = site);
    let step = format_ident!("__step", span = site);
    let index = format_ident!("__index", span = site);
    let variants: Vec<_> = (0..n)
        .map(|i| format_ident!("_{}", i, span = site))
        .collect();
    let generics: Vec<_> = (0..n)
        .map(|i| format_ident!("T{}", i, span = site))
        .collect();
    let futs: Vec<_> = (0..n)
        .map(|i| format_ident!("__fut{}", i, span = site))
        .collect();

    let conds = s.branches.iter().enumerate().map(|(i, b)| {
        let bit = 1u64 << i;
        b.cond
            .as_ref()
            .map(|c| quote!(if !(#c) { #disabled |= #bit; }))
    });
    let lets = s.branches.iter().zip(&futs).map(|(b, f)| {
        let e = &b.fut;
        quote!(let mut #f = ::core::pin::pin!(#krate::__private::IntoFuture::into_future(#e));)
    });
    let polls = s.branches.iter().enumerate().map(|(i, b)| {
        let bit = 1u64 << i;
        let f = &futs[i];
        let v = &variants[i];
        let mut shape = b.pat.clone();
        Shape.visit_pat_mut(&mut shape);
        quote! {
            #i => match #krate::__private::Future::poll(#f.as_mut(), #cx) {
                #krate::__private::Poll::Ready(#value) => {
                    #[allow(unused_variables, unreachable_patterns)]
                    match &#value {
                        #shape => return #krate::__private::Poll::Ready(#out_ty::#v(#value)),
                        _ => #disabled |= #bit,
                    }
                }
                #krate::__private::Poll::Pending => #pending = true,
            },
        }
    });
    let arms = s.branches.iter().enumerate().map(|(i, b)| {
        let v = &variants[i];
        let pat = &b.pat;
        let h = &b.handler;
        quote!(#out_ty::#v(#pat) => #h,)
    });
    let otherwise = match &s.otherwise {
        Some(e) => quote!(#e),
        None => quote!(::core::panic!(
            "all branches are disabled and there is no else branch"
        )),
    };
    let start_expr = if s.biased || n == 1 {
        quote!(0usize)
    } else {
        quote!(#krate::__private::select_start(#n32) as usize)
    };
    let index_expr = if n == 1 {
        quote!(#step)
    } else {
        quote!((#start + #step) % #n)
    };
    quote! {{
        #[allow(non_camel_case_types, dead_code)]
        enum #out_ty<#(#generics),*> { #(#variants(#generics),)* Disabled }
        #[allow(unused_mut)]
        let mut #disabled: u64 = 0;
        #(#conds)*
        let #out = {
            #(#lets)*
            #krate::__private::poll_fn(|#cx: &mut #krate::__private::Context<'_>| {
                #[allow(unused_variables)]
                let #start = #start_expr;
                let mut #pending = false;
                for #step in 0..#n {
                    let #index = #index_expr;
                    if #disabled & (1u64 << #index) != 0 {
                        continue;
                    }
                    match #index {
                        #(#polls)*
                        _ => ::core::unreachable!(),
                    }
                }
                if #pending {
                    #krate::__private::Poll::Pending
                } else {
                    #krate::__private::Poll::Ready(#out_ty::Disabled)
                }
            }).await
        };
        #[allow(unreachable_patterns)]
        match #out {
            #(#arms)*
            #out_ty::Disabled => #otherwise,
            _ => ::core::unreachable!("a select! branch's output stopped matching its pattern"),
        }
    }}
}
