package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"haven"
	"haven/service"
)

func init() {
	commands["vendors"] = command{"the registry of outside systems and their business associate agreements", runVendors}
}

func runVendors(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{"add": runVendorsAdd, "list": runVendorsList,
		"update": runVendorsUpdate, "retire": runVendorsRetire}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven vendors add|list|update|retire [flags]\n\n"+
			"  add      register an outside system (--name, --kind, --endpoint, --phi, the agreement's dates)\n"+
			"  list     the platform's vendors, or a practice's (--practice), with their agreements\n"+
			"  update   change a vendor (--id), for example record a renewed agreement (--baa-expires)\n"+
			"  retire   retire a vendor (--id): it receives nothing more\n\n"+
			"Without --practice a vendor is the platform's: a system the server itself uses (mail relay,\n"+
			"file storage, KMS). Nothing is sent to a vendor that is not registered with a current agreement.")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

// vendorFlags are the fields add and update take; set records which were
// given, so update changes only those.
type vendorFlags struct {
	name, kind, endpoint, phi, signed, expires, document, contact string
	set                                                           map[string]bool
}

func (f *vendorFlags) register(fs *flag.FlagSet) {
	kinds := make([]string, len(haven.VendorKinds))
	for i, k := range haven.VendorKinds {
		kinds[i] = string(k)
	}
	fs.StringVar(&f.name, "name", "", "the vendor's name, as admins and prescribers see it")
	fs.StringVar(&f.kind, "kind", "", "what it is: "+strings.Join(kinds, ", "))
	fs.StringVar(&f.endpoint, "endpoint", "", "where Haven connects: an https:// address, or host:port")
	fs.StringVar(&f.phi, "phi", "", "the most patient information it may receive: none, minimum or full")
	fs.StringVar(&f.signed, "baa-signed", "", "the date the business associate agreement was signed (YYYY-MM-DD)")
	fs.StringVar(&f.expires, "baa-expires", "", "the last day the agreement covers (YYYY-MM-DD)")
	fs.StringVar(&f.document, "baa-document", "", "where the signed agreement is kept (a reference)")
	fs.StringVar(&f.contact, "contact", "", "the vendor's contact for the agreement")
}

// apply copies the given flags onto v.
func (f *vendorFlags) apply(v *haven.Vendor) error {
	var err error
	if f.set["name"] {
		v.Name = f.name
	}
	if f.set["kind"] {
		v.Kind = haven.VendorKind(f.kind)
	}
	if f.set["endpoint"] {
		v.Endpoint = f.endpoint
	}
	if f.set["phi"] {
		v.PHI = haven.PHILevel(f.phi)
	}
	if f.set["baa-signed"] {
		if v.BAASigned, err = haven.ParseDate(f.signed); err != nil {
			return errors.New("--baa-signed: write the date YYYY-MM-DD")
		}
	}
	if f.set["baa-expires"] {
		if v.BAAExpires, err = haven.ParseDate(f.expires); err != nil {
			return errors.New("--baa-expires: write the date YYYY-MM-DD")
		}
	}
	if f.set["baa-document"] {
		v.BAADocument = f.document
	}
	if f.set["contact"] {
		v.Contact = f.contact
	}
	return nil
}

func vendorCommandFlags(env *Env, name, synopsis string, args []string, extra func(*flag.FlagSet)) (*Config, map[string]bool, error) {
	var fs *flag.FlagSet
	cfg, err := keysFlags(env, name, synopsis, args, func(f *flag.FlagSet) {
		fs = f
		if extra != nil {
			extra(f)
		}
	})
	set := map[string]bool{}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	}
	return cfg, set, err
}

func runVendorsAdd(ctx context.Context, env *Env, args []string) error {
	var vf vendorFlags
	var practice string
	cfg, set, err := vendorCommandFlags(env, "vendors add", "Registers an outside system with its business associate agreement.", args, func(fs *flag.FlagSet) {
		vf.register(fs)
		fs.StringVar(&practice, "practice", "", "the practice the vendor serves (its id); default: the platform")
	})
	if err != nil {
		return err
	}
	vf.set = set
	v := &haven.Vendor{PracticeID: practice}
	if err := vf.apply(v); err != nil {
		return err
	}
	if err := v.Check(); err != nil { // before any data is touched
		return errors.New(haven.ErrorMessage(err))
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.svc.OperatorAddVendor(ctx, v); err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	fmt.Fprintf(env.Stdout, "vendor %s registered: %s\n", v.ID, v.Name)
	warnBAA(env, v, time.Now())
	return nil
}

func runVendorsUpdate(ctx context.Context, env *Env, args []string) error {
	var vf vendorFlags
	var id string
	cfg, set, err := vendorCommandFlags(env, "vendors update", "Changes a vendor: only the flags given (its kind and practice stay).", args, func(fs *flag.FlagSet) {
		vf.register(fs)
		fs.StringVar(&id, "id", "", "the vendor's id (see haven vendors list)")
	})
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("--id is required")
	}
	if set["kind"] {
		return errors.New("--kind cannot change; retire the vendor and register the new one")
	}
	vf.set = set
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	var applyErr error
	v, err := st.svc.OperatorUpdateVendor(ctx, id, func(v *haven.Vendor) { applyErr = vf.apply(v) })
	if applyErr != nil {
		return applyErr
	}
	if err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	fmt.Fprintf(env.Stdout, "vendor %s updated: %s\n", v.ID, v.Name)
	warnBAA(env, v, time.Now())
	return nil
}

func runVendorsRetire(ctx context.Context, env *Env, args []string) error {
	var id string
	cfg, _, err := vendorCommandFlags(env, "vendors retire", "Retires a vendor: from now on it receives nothing.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "id", "", "the vendor's id (see haven vendors list)")
	})
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("--id is required")
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.svc.OperatorRetireVendor(ctx, id); err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	fmt.Fprintf(env.Stdout, "vendor %s retired\n", id)
	return nil
}

func runVendorsList(ctx context.Context, env *Env, args []string) error {
	var practice string
	cfg, _, err := vendorCommandFlags(env, "vendors list", "Lists the platform's vendors, or a practice's, with their agreements.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "a practice's id; default: the platform's own vendors")
	})
	if err != nil {
		return err
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	vs, err := st.svc.OperatorVendors(ctx, practice)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, v := range vs {
		fmt.Fprintf(env.Stdout, "%s  %-14s  %-7s  %s  %s  [%s]\n", v.ID, v.Kind, v.PHI, v.Name, v.Endpoint, vendorStatus(v, now))
	}
	return nil
}

// vendorStatus is a vendor's standing in a few words.
func vendorStatus(v *haven.Vendor, now time.Time) string {
	switch v.EgressRefusal(v.PHI, now) {
	case haven.EgressRetired:
		return "retired"
	case haven.EgressNoBAA:
		return "no agreement on file: receives nothing"
	case haven.EgressExpired:
		return "agreement ended " + v.BAAExpires.Format(time.DateOnly) + ": receives nothing"
	}
	if v.PHI == haven.PHINone {
		return "receives no patient information"
	}
	return "agreement until " + v.BAAExpires.Format(time.DateOnly)
}

func warnBAA(env *Env, v *haven.Vendor, now time.Time) {
	if r := v.EgressRefusal(v.PHI, now); r == haven.EgressNoBAA || r == haven.EgressExpired {
		fmt.Fprintf(env.Stdout, "warning: %s\n", vendorStatus(v, now))
	}
}

// recognizeVendors finds the outside systems this server is configured
// with (the mail relay, an S3 store, a KMS, the card processor) in the platform's vendor
// registry, registering any that is missing, and says which lack a
// current business associate agreement. The relay carries no PHI by
// design (emails say only that there is something to read), but one that
// is retired, or whose agreement ended, gets nothing: mail stays spooled.
//
// LiveKit carries visits' video, which is PHI even sealed end to end: it
// needs a current agreement covering full PHI, and without one the server
// refuses to start (its gate refuses every request to LiveKit after that
// too, once an agreement ends or the vendor is retired).
func recognizeVendors(ctx context.Context, env *Env, st *stack, cfg *Config, mcfg *mailConfig, vcfg *videoConfig) error {
	var configured []service.ConfiguredVendor
	if mcfg.relay != nil {
		configured = append(configured, service.ConfiguredVendor{Kind: haven.VendorEmailRelay, Endpoint: mcfg.relay.Addr, PHI: haven.PHINone})
	}
	if strings.HasPrefix(cfg.BlobStore, "s3://") {
		// Files are sealed before they leave, but sealed PHI is still PHI.
		configured = append(configured, service.ConfiguredVendor{Kind: haven.VendorObjectStorage, Endpoint: cfg.S3Endpoint, PHI: haven.PHIFull})
	}
	if cfg.KMS != "" {
		endpoint := os.Getenv("VAULT_ADDR")
		if endpoint == "" {
			endpoint = cfg.KMS
		}
		// The KMS wraps keys; no patient data reaches it.
		configured = append(configured, service.ConfiguredVendor{Kind: haven.VendorKMS, Endpoint: endpoint, PHI: haven.PHINone})
	}
	if cfg.processor != nil {
		// The card processor is told amounts and random references only.
		configured = append(configured, service.ConfiguredVendor{Kind: haven.VendorPayment, Endpoint: cfg.processor.Endpoint(), PHI: haven.PHINone})
	}
	if vcfg.Engine == engineLiveKit {
		configured = append(configured, service.ConfiguredVendor{Kind: haven.VendorVideo, Endpoint: vcfg.LiveKitURL, PHI: haven.PHIFull})
	}
	if len(configured) == 0 {
		return nil
	}
	vs, err := st.svc.RecognizeVendors(ctx, configured)
	if err != nil {
		return fmt.Errorf("vendor registry: %s", oneLine(err))
	}
	now := time.Now()
	for i, v := range vs {
		if v.BAAExpires.IsZero() || v.EgressRefusal(v.PHI, now) != "" {
			fmt.Fprintf(env.Stdout, "vendor without a current business associate agreement: %s %s (%s); record one with haven vendors update --id %s\n",
				v.Kind.Label(), v.Endpoint, vendorStatus(v, now), v.ID)
		}
		// The object store and the KMS ask the registry before each
		// operation from now on (service.EgressGate).
		switch configured[i].Kind {
		case haven.VendorObjectStorage:
			st.blobGate.set(st.svc.EgressGate("", v.ID, configured[i].PHI).Allow)
		case haven.VendorKMS:
			st.kmsGate.set(st.svc.EgressGate("", v.ID, configured[i].PHI).Allow)
		case haven.VendorVideo:
			if refusal := v.EgressRefusal(haven.PHIFull, now); refusal != "" {
				return fmt.Errorf("--video-engine livekit: LiveKit (%s) has no current business associate agreement covering video visits (%s); record it with haven vendors update --id %s --baa-signed YYYY-MM-DD --baa-expires YYYY-MM-DD --phi full",
					v.Endpoint, refusal, v.ID)
			}
			vcfg.livekitAllow = st.svc.EgressGate("", v.ID, haven.PHIFull).Allow
		}
		if configured[i].Kind == haven.VendorEmailRelay {
			id, svc := v.ID, st.svc
			mcfg.allow = func(ctx context.Context) error {
				_, err := svc.CheckEgress(ctx, "", id, haven.PHINone)
				return err
			}
		}
	}
	return nil
}
