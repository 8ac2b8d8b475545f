//! `#[sim_test]`: the attribute behind `lockstep::sim_test`.
//!
//! Use it through the `lockstep` crate (`#[lockstep::sim_test]`); the
//! expansion calls `::lockstep::__private`, so this crate does nothing alone.
//!
//! The attribute turns an `async fn` into a `#[test]` that runs the body in a
//! fresh simulation for every seed, and on the first failing seed panics
//! with a report that ends in the command that replays it. All attribute
//! input is validated here, at compile time, with errors that point at the
//! offending token and say what is accepted.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, LitStr, ReturnType, parse_macro_input};

const OPTIONS: &str = "seed, seeds, max_time, max_steps, livelock_steps, blocked_poll, watchdog, \
                       policy, faults, check_determinism";

/// Runs an `async fn` test in lockstep simulations, one per seed.
///
/// See the `lockstep::sim_test` documentation for the options.
#[proc_macro_attribute]
pub fn sim_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    match expand(options, func) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Options {
    seed: Option<(u64, Span)>,
    seeds: Option<(u64, Span)>,
    max_time: Option<u64>,
    max_steps: Option<u64>,
    livelock_steps: Option<u64>,
    blocked_poll: Option<Option<u64>>,
    watchdog: Option<Option<u64>>,
    policy: Option<TokenStream2>,
    poll_cost: Option<TokenStream2>,
    late_polls: Option<TokenStream2>,
    faults: Option<TokenStream2>,
    check_determinism: Option<bool>,
}

fn once<T>(slot: &Option<T>, meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if slot.is_some() {
        let name = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        return Err(meta.error(format!("option `{name}` is given twice")));
    }
    Ok(())
}

fn int_lit(expr: &Expr, what: &str) -> syn::Result<u64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>().map_err(|_| {
            syn::Error::new(
                i.span(),
                format!("{what} must be a whole number that fits in 64 bits"),
            )
        }),
        other => Err(syn::Error::new(
            other.span(),
            format!(
                "{what} must be a whole number literal, e.g. `{}`",
                example(what)
            ),
        )),
    }
}

fn example(what: &str) -> &'static str {
    match what {
        "seeds" => "seeds = 500",
        "max_steps" => "max_steps = 100_000",
        "livelock_steps" => "livelock_steps = 10_000_000",
        _ => "seed = 0x1a7",
    }
}

/// Parses `0x1a7`, `423`, `1_000` like `lockstep::Seed`'s `FromStr`.
fn parse_seed_str(s: &str) -> Option<u64> {
    let t: String = s.trim().chars().filter(|&c| c != '_').collect();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// `blocked_poll = "100ms"` / `watchdog = "2s"`, or `= false` to turn it off.
fn wall_limit(key: &str, expr: Expr) -> syn::Result<Option<u64>> {
    match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) if !b.value => Ok(None),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => parse_duration(&s.value()).map(Some).ok_or_else(|| {
            syn::Error::new(
                s.span(),
                format!(
                    "invalid {key} {:?}: expected a positive wall-clock duration such as \
                     \"100ms\", \"1s\" or \"2.5s\" (units: ns, us, ms, s, m, h), or `false` to \
                     turn it off",
                    s.value()
                ),
            )
        }),
        other => Err(syn::Error::new(
            other.span(),
            format!("{key} takes a duration string such as \"100ms\", or `false` to turn it off"),
        )),
    }
}

/// Parses `"500ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"`, `"250us"`, `"10ns"`
/// and compound durations, largest unit first (`"1h30m"`, `"1m30.5s"`),
/// into nanoseconds (the syntax of `lockstep::time::parse_duration`).
fn parse_duration(s: &str) -> Option<u64> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut rest = compact.as_str();
    let mut total = 0f64;
    let mut last = f64::INFINITY;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(split);
        let end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(end);
        let num: f64 = num.parse().ok()?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        if scale >= last {
            return None;
        }
        last = scale;
        total += num * scale;
        rest = tail;
    }
    (total.is_finite() && total >= 1.0 && total < u64::MAX as f64).then_some(total.round() as u64)
}

impl Options {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "seed" => {
                once(&self.seed, &meta)?;
                let expr: Expr = meta.value()?.parse()?;
                let seed = match &expr {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => parse_seed_str(&s.value()).ok_or_else(|| {
                        syn::Error::new(
                            s.span(),
                            "invalid seed: a seed is a 64-bit unsigned integer, in hex with a \
                                 0x prefix (\"0x1a7\") or in decimal (\"423\")",
                        )
                    })?,
                    other => int_lit(other, "seed")?,
                };
                if let Some((_, span)) = self.seeds {
                    return Err(syn::Error::new(span, SEED_AND_SEEDS));
                }
                self.seed = Some((seed, expr.span()));
            }
            "seeds" => {
                once(&self.seeds, &meta)?;
                let expr: Expr = meta.value()?.parse()?;
                let n = int_lit(&expr, "seeds")?;
                if n == 0 {
                    return Err(syn::Error::new(expr.span(), "seeds must be at least 1"));
                }
                if self.seed.is_some() {
                    return Err(syn::Error::new(expr.span(), SEED_AND_SEEDS));
                }
                self.seeds = Some((n, expr.span()));
            }
            "max_time" => {
                once(&self.max_time, &meta)?;
                let lit: LitStr = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "max_time takes a string such as \"30s\"")
                })?;
                let nanos = parse_duration(&lit.value()).ok_or_else(|| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "invalid max_time {:?}: expected a positive duration such as \
                             \"500ms\", \"30s\", \"1.5s\", \"2m\" or \"1h30m\" (units: ns, us, \
                             ms, s, m, h; several parts largest first)",
                            lit.value()
                        ),
                    )
                })?;
                self.max_time = Some(nanos);
            }
            "livelock_steps" => {
                once(&self.livelock_steps, &meta)?;
                let expr: Expr = meta.value()?.parse()?;
                let n = int_lit(&expr, "livelock_steps")?;
                if n == 0 {
                    return Err(syn::Error::new(
                        expr.span(),
                        "livelock_steps must be at least 1",
                    ));
                }
                self.livelock_steps = Some(n);
            }
            "blocked_poll" | "watchdog" => {
                let slot = if key == "watchdog" {
                    &self.watchdog
                } else {
                    &self.blocked_poll
                };
                once(slot, &meta)?;
                let value = wall_limit(&key, meta.value()?.parse()?)?;
                if key == "watchdog" {
                    self.watchdog = Some(value);
                } else {
                    self.blocked_poll = Some(value);
                }
            }
            "max_steps" => {
                once(&self.max_steps, &meta)?;
                let expr: Expr = meta.value()?.parse()?;
                let n = int_lit(&expr, "max_steps")?;
                if n == 0 {
                    return Err(syn::Error::new(expr.span(), "max_steps must be at least 1"));
                }
                self.max_steps = Some(n);
            }
            "policy" => {
                once(&self.policy, &meta)?;
                let expr: Expr = meta.value()?.parse()?;
                let text = match &expr {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => Some(s.value()),
                    _ => None,
                };
                let (base, options) = match text.as_deref().map(|t| t.split_once('+')) {
                    Some(Some((base, options))) => (Some(base.to_string()), Some(options)),
                    Some(None) => (text.clone(), None),
                    None => (None, None),
                };
                if let (
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }),
                    Some(options),
                ) = (&expr, options)
                {
                    if base.as_deref() == Some("fifo") {
                        return Err(syn::Error::new(
                            s.span(),
                            "\"fifo\" takes no options: it never charges polls nor moves the \
                             clock early (it is the natural order); use \"random+...\"",
                        ));
                    }
                    for option in options.split('+') {
                        let option = option.trim();
                        let (slot, value, name) = if option.starts_with("late") {
                            (&mut self.late_polls, late_polls(s, option)?, "late")
                        } else {
                            (&mut self.poll_cost, poll_cost(s, option)?, "cost")
                        };
                        if slot.is_some() {
                            return Err(syn::Error::new(
                                s.span(),
                                format!("`{name}` is given twice in {:?}", s.value()),
                            ));
                        }
                        *slot = Some(value);
                    }
                }
                self.policy = Some(match &expr {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => match base.as_deref().unwrap_or_default() {
                        "random" => quote_spanned!(s.span()=> ::lockstep::Policy::Random),
                        "fifo" => quote_spanned!(s.span()=> ::lockstep::Policy::Fifo),
                        "swarm" => quote_spanned!(s.span()=> ::lockstep::Policy::Swarm),
                        "mix" => quote_spanned!(s.span()=> ::lockstep::Policy::Mix),
                        other => match other.strip_prefix("pct").map(|d| d.strip_prefix(':')) {
                            Some(None) if other == "pct" => {
                                quote_spanned!(s.span()=> ::lockstep::Policy::Pct { depth: 3 })
                            }
                            Some(Some(d))
                                if d.parse::<u32>().is_ok_and(|d| (1..=64).contains(&d)) =>
                            {
                                let d: u32 = d.parse().unwrap_or(3);
                                quote_spanned!(s.span()=> ::lockstep::Policy::Pct { depth: #d })
                            }
                            _ => {
                                return Err(syn::Error::new(
                                    s.span(),
                                    format!(
                                        "unknown policy {other:?}: expected \"random\", \"fifo\", \
                                         \"pct\", \"pct:D\" (depth D from 1 to 64), \"swarm\" \
                                         or \"mix\", optionally with a poll cost \
                                         (\"random+cost:1ms:8x\"), or an expression of type \
                                         lockstep::Policy"
                                    ),
                                ));
                            }
                        },
                    },
                    other => quote!(#other),
                });
            }
            "faults" => {
                once(&self.faults, &meta)?;
                let expr: Expr = meta.value()?.parse()?;
                self.faults = Some(match &expr {
                    // `faults = 0.2`: a random plan of that intensity.
                    Expr::Lit(ExprLit {
                        lit: Lit::Float(f), ..
                    }) => {
                        let intensity: f64 = f.base10_parse()?;
                        if !(0.0..=1.0).contains(&intensity) {
                            return Err(syn::Error::new(
                                f.span(),
                                "a fault intensity is between 0.0 (no faults) and 1.0",
                            ));
                        }
                        quote_spanned!(f.span()=> ::lockstep::fault::FaultPlan::random(#f))
                    }
                    Expr::Unary(syn::ExprUnary {
                        op: syn::UnOp::Neg(_),
                        expr: inner,
                        ..
                    }) if matches!(&**inner, Expr::Lit(_)) => {
                        return Err(syn::Error::new_spanned(
                            &expr,
                            "a fault intensity is between 0.0 (no faults) and 1.0, not negative \
                             (e.g. `faults = 0.2`)",
                        ));
                    }
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(text),
                        ..
                    }) => {
                        let text = text.value();
                        quote_spanned!(expr.span()=> {
                            match #text.parse::<::lockstep::fault::FaultPlan>() {
                                ::core::result::Result::Ok(plan) => plan,
                                ::core::result::Result::Err(e) => ::core::panic!(
                                    "#[sim_test(faults = \"...\")]: {}", e
                                ),
                            }
                        })
                    }
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(i), ..
                    }) => {
                        return Err(syn::Error::new(
                            i.span(),
                            "faults takes a FaultPlan expression, or a random intensity written as a \
                             float between 0.0 and 1.0 (e.g. `faults = 0.2`)",
                        ));
                    }
                    other => quote!(#other),
                });
            }
            "check_determinism" => {
                once(&self.check_determinism, &meta)?;
                let on = if meta.input.peek(syn::Token![=]) {
                    match meta.value()?.parse::<Expr>()? {
                        Expr::Lit(ExprLit {
                            lit: Lit::Bool(b), ..
                        }) => b.value,
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "check_determinism takes no value, or `true`/`false`",
                            ));
                        }
                    }
                } else {
                    true
                };
                self.check_determinism = Some(on);
            }
            _ => {
                let path = &meta.path;
                return Err(meta.error(format!(
                    "unknown option `{}`: #[sim_test] accepts {OPTIONS}",
                    quote!(#path).to_string().replace(' ', "")
                )));
            }
        }
        Ok(())
    }
}

/// The options after `+` in `policy = "random+cost:1ms:8x"`: a poll cost
/// `cost:MAX` or `cost:MAX:Kx`, checked here so that a typo is a compile
/// error at the string.
fn poll_cost(lit: &LitStr, options: &str) -> syn::Result<TokenStream2> {
    let accepted = "a poll cost is `cost:MAX` or `cost:MAX:Kx`: each poll takes up to MAX of \
                    virtual time (\"500us\", \"1ms\"), hosts up to K times slower (K from 1 \
                    to 64), e.g. policy = \"random+cost:1ms:8x\"";
    let err = |what: String| syn::Error::new(lit.span(), format!("{what}: {accepted}"));
    let Some(rest) = options.strip_prefix("cost:") else {
        return Err(err(format!(
            "unknown policy option {options:?} (expected `cost:...` or `late:...`)"
        )));
    };
    let (max, slowest) = match rest.split_once(':') {
        Some((max, k)) => {
            let k = k.strip_suffix('x').unwrap_or(k);
            match k.parse::<u32>() {
                Ok(k) if (1..=64).contains(&k) => (max, k),
                _ => return Err(err(format!("the slowdown {k:?} is not 1 to 64"))),
            }
        }
        None => (rest, 1),
    };
    if max.trim() == "0" {
        // `cost:0`, as the runtime's text form writes "no poll cost".
        return Ok(quote_spanned!(lit.span()=> ::lockstep::explore::PollCost::OFF));
    }
    let nanos = parse_duration(max).ok_or_else(|| err(format!("{max:?} is not a duration")))?;
    Ok(quote_spanned!(lit.span()=>
        ::lockstep::explore::PollCost::new(::lockstep::time::Duration::from_nanos(#nanos))
            .host_speeds(#slowest)))
}

/// `late:off`, `late:P` or `late:P:WITHIN` after `+` in `policy = "..."`:
/// late polls, checked here so that a typo is a compile error.
fn late_polls(lit: &LitStr, option: &str) -> syn::Result<TokenStream2> {
    let accepted = "late polls are `late:off`, `late:P` or `late:P:WITHIN`: with probability \
                    P (0 to 1) per step the clock moves early to a timer due within WITHIN \
                    (default \"10ms\"), e.g. policy = \"random+late:0.25:10ms\"";
    let err = |what: String| syn::Error::new(lit.span(), format!("{what}: {accepted}"));
    let Some(rest) = option.strip_prefix("late:") else {
        return Err(err(format!("unknown policy option {option:?}")));
    };
    if rest == "off" {
        return Ok(quote_spanned!(lit.span()=> ::lockstep::explore::LatePolls::OFF));
    }
    let (p, within) = match rest.split_once(':') {
        Some((p, w)) => (
            p,
            parse_duration(w).ok_or_else(|| err(format!("{w:?} is not a duration")))?,
        ),
        None => (rest, 10_000_000),
    };
    let p: f64 = match p.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => p,
        _ => {
            return Err(err(format!(
                "the probability {p:?} is not a number from 0 to 1"
            )));
        }
    };
    Ok(quote_spanned!(lit.span()=>
        ::lockstep::explore::LatePolls::new(#p, ::lockstep::time::Duration::from_nanos(#within))))
}

const SEED_AND_SEEDS: &str =
    "`seed` (one fixed seed) and `seeds` (how many seeds to run) cannot be combined";

fn expand(options: Options, func: ItemFn) -> syn::Result<TokenStream2> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[sim_test] goes on an `async fn`: the body runs as the main task of a simulation",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "a #[sim_test] function takes no arguments",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a #[sim_test] function cannot be generic",
        ));
    }
    if let Some(attr) = attrs.iter().find(|a| a.path().is_ident("test")) {
        return Err(syn::Error::new(
            attr.span(),
            "remove #[test]: #[sim_test] already makes the function a test",
        ));
    }
    let ignored = attrs.iter().any(|a| a.path().is_ident("ignore"));
    let name = &sig.ident;
    let output = match &sig.output {
        ReturnType::Default => quote!(),
        ReturnType::Type(arrow, ty) => quote!(#arrow #ty),
    };
    // Outside test builds the `#[test]` function is compiled away, and with
    // it the bound on the return type; check it here too, so the error shows
    // wherever the code is compiled (and exactly once).
    let output_check = match &sig.output {
        ReturnType::Default => quote!(),
        ReturnType::Type(_, ty) => quote_spanned! {ty.span()=>
            #[cfg(not(test))]
            const _: fn() = || {
                fn returns_a_test_output<T: ::lockstep::__private::TestOutput>() {}
                returns_a_test_output::<#ty>();
            };
        },
    };

    let mut calls = Vec::new();
    if let Some((seed, _)) = options.seed {
        calls.push(quote!(.seed(::lockstep::Seed(#seed))));
    }
    if let Some((n, _)) = options.seeds {
        calls.push(quote!(.seeds(#n)));
    }
    if let Some(nanos) = options.max_time {
        calls.push(quote!(.max_virtual_time(::lockstep::time::Duration::from_nanos(#nanos))));
    }
    if let Some(n) = options.max_steps {
        calls.push(quote!(.max_steps(#n)));
    }
    if let Some(n) = options.livelock_steps {
        calls.push(quote!(.livelock_steps(#n)));
    }
    for (name, value) in [
        ("blocked_poll", options.blocked_poll),
        ("watchdog", options.watchdog),
    ] {
        let method = syn::Ident::new(name, Span::call_site());
        match value {
            Some(Some(nanos)) => calls.push(
                quote!(.#method(::core::option::Option::Some(::lockstep::time::Duration::from_nanos(#nanos)))),
            ),
            Some(None) => calls.push(quote!(.#method(::core::option::Option::None))),
            None => {}
        }
    }
    if let Some(p) = options.policy {
        calls.push(quote!(.policy(#p)));
    }
    if let Some(c) = options.poll_cost {
        calls.push(quote!(.poll_cost(#c)));
    }
    if let Some(l) = options.late_polls {
        calls.push(quote!(.late_polls(#l)));
    }
    if let Some(f) = options.faults {
        calls.push(quote!(.faults(#f)));
    }
    if let Some(on) = options.check_determinism {
        calls.push(quote!(.check_determinism(#on)));
    }

    Ok(quote! {
        #output_check
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            async fn __lockstep_test_body() #output #block
            ::lockstep::__private::SimTest::new(::lockstep::__private::TestMeta {
                name: ::core::stringify!(#name),
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                package: ::core::env!("CARGO_PKG_NAME"),
                crate_name: ::core::env!("CARGO_CRATE_NAME"),
                ignored: #ignored,
            })
            #(#calls)*
            .run(__lockstep_test_body);
        }
    })
}
