//! `#[transform]`: turns one function into a Sluice plugin.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{spanned::Spanned, FnArg, ItemFn, Type};

/// Makes a plugin from `fn name(record: Record) -> R` or
/// `fn name(record: Record, config: &MyConfig) -> R`, where `R` is a `Record`,
/// `Option<Record>`, `Vec<Record>`, `()` or a `Result` of one of those, and `MyConfig`
/// deserializes the transform's YAML `config:` block.
///
/// The function stays as written, so tests call it directly. The macro adds a struct
/// named after the function in CamelCase (`fn tag_venue` → `TagVenue`) implementing
/// `Plugin`, and, only when compiling for `wasm32`, the ABI exports.
#[proc_macro_attribute]
pub fn transform(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.into_compile_error().into(),
    }
}

fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "#[transform] takes no arguments",
        ));
    }
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if let Some(asyncness) = sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "a transform cannot be async",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a transform cannot be generic",
        ));
    }
    let config_ty: Option<Type> =
        match sig.inputs.len() {
            1 => None,
            2 => match &sig.inputs[1] {
                FnArg::Typed(pat) => match &*pat.ty {
                    Type::Reference(r) if r.mutability.is_none() => Some((*r.elem).clone()),
                    other => return Err(syn::Error::new(
                        other.span(),
                        "the config argument must be a shared reference, e.g. `config: &MyConfig`",
                    )),
                },
                FnArg::Receiver(r) => {
                    return Err(syn::Error::new(r.span(), "a transform is a free function"))
                }
            },
            _ => {
                return Err(syn::Error::new(
                    sig.inputs.span(),
                    "a transform takes `record: Record` and optionally `config: &MyConfig`",
                ))
            }
        };
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(syn::Error::new(r.span(), "a transform is a free function"));
    }

    let func_name = &sig.ident;
    let struct_name = format_ident!(
        "{}",
        camel_case(&func_name.to_string()),
        span = func_name.span()
    );
    let vis = &func.vis;
    let (config, call) = match &config_ty {
        Some(ty) => (quote!(#ty), quote!(#func_name(record, &self.config))),
        None => (quote!(()), quote!(#func_name(record))),
    };
    let doc = format!("The plugin made from [`{func_name}`] by `#[transform]`.");
    Ok(quote! {
        #func

        #[doc = #doc]
        #vis struct #struct_name {
            #[allow(dead_code)]
            config: #config,
        }

        impl ::sluice_sdk::Plugin for #struct_name {
            type Config = #config;

            fn new(config: Self::Config) -> ::std::result::Result<Self, ::sluice_sdk::Error> {
                ::std::result::Result::Ok(Self { config })
            }

            fn process(
                &mut self,
                record: ::sluice_sdk::Record,
                out: &mut ::sluice_sdk::Output,
            ) -> ::std::result::Result<(), ::sluice_sdk::Error> {
                ::sluice_sdk::IntoRecords::into_records(#call, out).map_err(::sluice_sdk::Error)
            }
        }

        ::sluice_sdk::export_plugin!(#struct_name);
    })
}

fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
